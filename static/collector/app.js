/* Sumo Sources: behaviour shared by every page (no inline scripts: the CSP allows 'self' only).
 * - Bootstrap tooltips on [data-bs-toggle="tooltip"], delegated so thousands of icons cost nothing
 *   until hovered; the server-built title attribute stays the source of the text.
 * - Expand/collapse of a collector's source rows on the Collection page.
 * - The custom time range of Log Search, and copy buttons.
 * - A field marked invalid by the server stops looking invalid once the user edits it.
 */
(function () {
  "use strict";

  if (window.bootstrap) {
    new window.bootstrap.Tooltip(document.body, {
      selector: '[data-bs-toggle="tooltip"]',
      container: "body",
      boundary: "window",
    });
  }

  function setExpanded(button, expanded) {
    const group = document.getElementById("collector-" + button.dataset.toggleSources);
    if (!group) return;
    button.setAttribute("aria-expanded", expanded ? "true" : "false");
    group.querySelectorAll(".source-row").forEach(function (row) {
      row.classList.toggle("d-none", !expanded);
    });
  }

  document.addEventListener("click", function (event) {
    const toggle = event.target.closest("[data-toggle-sources]");
    if (toggle) {
      setExpanded(toggle, toggle.getAttribute("aria-expanded") !== "true");
      return;
    }
    const all = event.target.closest("[data-expand-all], [data-collapse-all]");
    if (all) {
      const expand = all.hasAttribute("data-expand-all");
      document.querySelectorAll("[data-toggle-sources]").forEach(function (button) {
        setExpanded(button, expand);
      });
      return;
    }
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      const source = document.querySelector('[data-copy-source="' + copy.dataset.copy + '"]');
      if (source && navigator.clipboard) {
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          copy.textContent = "Copied";
        });
      }
    }
  });

  document.addEventListener("input", function (event) {
    const field = event.target;
    if (!field.classList || !field.classList.contains("is-invalid")) return;
    field.classList.remove("is-invalid");
    const group = field.closest(".mb-3");
    if (group) {
      group.querySelectorAll(".invalid-feedback").forEach(function (el) { el.remove(); });
    }
  });

  const range = document.querySelector("[data-range-select]");
  const custom = document.querySelector("[data-custom-range]");
  if (range && custom) {
    range.addEventListener("change", function () {
      custom.classList.toggle("d-none", range.value !== "custom");
    });
  }
})();
