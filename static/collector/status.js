/* Live source status without a page reload.
 *
 * Polls GET <body data-status-url>?ids=... (collector.views.collection.status_json) every
 * [data-status-poll] milliseconds while the page is visible, and swaps in place, for each source:
 * the icon shape (<use href>), its colour class, its tooltip, the state label, the status text and
 * the start-up stepper. On a source page it also reloads the timeline fragment when the state
 * changes. All text is set with textContent/attributes, never parsed as HTML, except the timeline
 * fragment, which the server renders with auto-escaping.
 */
(function () {
  "use strict";

  const url = document.body.dataset.statusUrl;
  const poller = document.querySelector("[data-status-poll]");
  if (!url || !poller) return;
  const every = parseInt(poller.dataset.statusPoll, 10) || 5000;
  const sourcePage = document.querySelector("[data-source-page]");
  const known = {};

  function sourceIds() {
    const ids = new Set();
    document.querySelectorAll("[data-status-for]").forEach(function (el) {
      ids.add(el.dataset.statusFor);
    });
    return Array.from(ids);
  }

  function setTooltip(el, text) {
    const tip = window.bootstrap ? window.bootstrap.Tooltip.getInstance(el) : null;
    if (tip) {
      el.setAttribute("data-bs-original-title", text);
      tip.setContent({ ".tooltip-inner": text });
    } else {
      el.setAttribute("title", text);
    }
  }

  function updateStepper(id, state, info) {
    const stepper = document.querySelector('[data-stepper="' + id + '"]');
    if (!stepper) return;
    const steps = Array.from(stepper.querySelectorAll("[data-step]"));
    const index = steps.findIndex(function (li) { return li.dataset.step === state; });
    const extra = stepper.querySelector("[data-step-extra]");
    steps.forEach(function (li, i) {
      if (index >= 0) li.classList.toggle("done", i <= index);
      li.classList.toggle("current", i === index);
      li.classList.toggle("last-visible", index >= 0 && i === steps.length - 1);
    });
    if (!extra) return;
    extra.className = "step step-extra";
    if (index >= 0) {
      extra.classList.add("d-none");
    } else {
      extra.classList.add("step-" + info.colour);
      extra.querySelector(".label").textContent = info.stateLabel;
    }
  }

  function refreshTimeline() {
    const container = document.querySelector("[data-timeline-container]");
    if (!container || !sourcePage) return;
    fetch(sourcePage.dataset.timelineUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) container.innerHTML = html; })
      .catch(function () { /* the next state change retries */ });
  }

  function apply(id, info) {
    document.querySelectorAll('[data-status-for="' + id + '"]').forEach(function (el) {
      Array.from(el.classList).forEach(function (cls) {
        if (cls.indexOf("text-") === 0) el.classList.remove(cls);
      });
      el.classList.add("text-" + info.colour);
      el.dataset.health = info.health;
      el.setAttribute("aria-label", info.label + ": " + info.stateLabel);
      const use = el.querySelector("use");
      if (use) use.setAttribute("href", "#icon-" + info.icon);
      setTooltip(el, info.tooltip);
    });
    document.querySelectorAll('[data-state-label-for="' + id + '"]').forEach(function (el) {
      el.textContent = info.stateLabel;
    });
    document.querySelectorAll('[data-status-text-for="' + id + '"]').forEach(function (el) {
      el.textContent = info.tooltip;
    });
    updateStepper(id, info.state, info);
    const before = known[id];
    known[id] = info.state + "|" + info.tooltip;
    if (sourcePage && before !== undefined && before !== known[id]) refreshTimeline();
  }

  let failures = 0;
  function poll() {
    const ids = sourceIds();
    if (!ids.length) return;
    if (document.hidden) {
      window.setTimeout(poll, every);
      return;
    }
    fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        Object.keys(data.sources || {}).forEach(function (id) { apply(id, data.sources[id]); });
      })
      .catch(function () { failures = Math.min(failures + 1, 6); })
      .finally(function () { window.setTimeout(poll, every * (1 + failures)); });
  }

  window.setTimeout(poll, Math.min(every, 1500));
})();
