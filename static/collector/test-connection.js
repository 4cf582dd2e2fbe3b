/* "Test connection" on the source form (and "Send test message" on the destination form): posts
 * the form (with its CSRF token) to the button's data-test-connection URL and shows the
 * server-rendered, auto-escaped answer. Nothing is saved. data-test-waiting, when set, replaces
 * the words shown while waiting.
 */
(function () {
  "use strict";

  const button = document.querySelector("[data-test-connection]");
  if (!button) return;
  const form = button.closest("form");
  const result = form.querySelector("[data-test-result]");
  const label = button.innerHTML;

  button.addEventListener("click", function () {
    button.disabled = true;
    button.textContent = "Testing…";
    result.replaceChildren();
    const waiting = document.createElement("div");
    waiting.className = "small text-body-secondary";
    waiting.textContent =
      button.dataset.testWaiting || "Contacting the vendor (at most 10 seconds)…";
    result.appendChild(waiting);
    fetch(button.dataset.testConnection, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) { result.innerHTML = html; })
      .catch(function (error) {
        result.replaceChildren();
        const failed = document.createElement("div");
        failed.className = "alert alert-danger small mb-0";
        failed.textContent = "The test could not be run (" + error.message + "). Try again.";
        result.appendChild(failed);
      })
      .finally(function () {
        button.disabled = false;
        button.innerHTML = label;
      });
  });
})();
