/* The Fields key/value widget: "+ Add" and remove rows, and the live check of each key against
 * the Fields schema (GET data-check-url?name=...): a green check when the field exists and is
 * enabled, an orange triangle when it is missing or disabled (then the "automatically add or
 * enable" option is shown), a red octagon for a name that can never be a field.
 */
(function () {
  "use strict";

  const SVG = "http://www.w3.org/2000/svg";
  const LOOK = {
    enabled: ["check-circle", "text-success"],
    builtin: ["check-circle", "text-success"],
    missing: ["exclamation-triangle", "text-orange"],
    disabled: ["exclamation-triangle", "text-orange"],
    invalid: ["x-octagon", "text-danger"],
  };

  function iconNode(name) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS(SVG, "use");
    use.setAttribute("href", "#icon-" + name);
    svg.appendChild(use);
    return svg;
  }

  function init(widget) {
    const rows = widget.querySelector(".fields-rows");
    const template = widget.querySelector("template[data-row-template]");
    const add = widget.querySelector("[data-add-row]");
    const legend = widget.querySelector("[data-fields-legend]");
    const form = widget.closest("form");
    const autoAdd = form ? form.querySelector("[data-auto-add]") : null;
    const max = parseInt(widget.dataset.maxRows, 10) || 10;
    let timer = null;
    let sequence = 0;

    function keyInputs() {
      return Array.from(rows.querySelectorAll("[data-field-key]"));
    }

    function setStatus(input, status, message) {
      const holder = input.closest(".fields-row").querySelector("[data-field-status]");
      holder.replaceChildren();
      holder.removeAttribute("title");
      holder.className = "field-status";
      holder.dataset.status = status || "";
      if (!status) return;
      const look = LOOK[status];
      holder.classList.add(look[1]);
      holder.appendChild(iconNode(look[0]));
      holder.setAttribute("title", message);
      holder.setAttribute("aria-label", message);
    }

    function refreshControls() {
      const count = keyInputs().length;
      add.disabled = count >= max;
      add.textContent = count >= max ? "At most " + max + " fields" : "+ Add";
      if (legend) legend.hidden = count === 0;
    }

    function check() {
      const inputs = keyInputs();
      const names = Array.from(new Set(inputs.map(function (i) { return i.value.trim(); }).filter(Boolean)));
      const mine = ++sequence;
      if (!names.length) {
        inputs.forEach(function (input) { setStatus(input, ""); });
        if (autoAdd) autoAdd.hidden = true;
        return;
      }
      const query = names.map(function (n) { return "name=" + encodeURIComponent(n); }).join("&");
      fetch(widget.dataset.checkUrl + "?" + query, { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (mine !== sequence) return; // a newer check is on its way
          let needsSchema = false;
          keyInputs().forEach(function (input) {
            const answer = data.fields[input.value.trim()];
            if (!answer) { setStatus(input, ""); return; }
            setStatus(input, answer.status, answer.message);
            if (answer.status === "missing" || answer.status === "disabled") needsSchema = true;
          });
          if (autoAdd) autoAdd.hidden = !needsSchema;
        })
        .catch(function () { /* the icons stay as they were; the server validates on save */ });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(check, 200);
    }

    add.addEventListener("click", function () {
      if (keyInputs().length >= max) return;
      rows.appendChild(template.content.cloneNode(true));
      const inputs = keyInputs();
      inputs[inputs.length - 1].focus();
      refreshControls();
    });
    rows.addEventListener("click", function (event) {
      const remove = event.target.closest("[data-remove-row]");
      if (!remove) return;
      remove.closest(".fields-row").remove();
      refreshControls();
      later();
    });
    rows.addEventListener("input", function (event) {
      if (event.target.matches("[data-field-key]")) later();
    });

    refreshControls();
    check();
  }

  document.querySelectorAll(".fields-widget").forEach(init);
})();
