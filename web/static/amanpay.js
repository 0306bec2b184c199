// Live countdowns for Amanpay deadlines: <span data-countdown="ISO-8601">. No inline script (CSP).
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function render(el) {
    var end = Date.parse(el.getAttribute("data-countdown"));
    if (isNaN(end)) { el.textContent = ""; return; }
    var left = Math.floor((end - Date.now()) / 1000);
    if (left <= 0) { el.textContent = el.getAttribute("data-expired-text") || "délai écoulé"; return; }
    var d = Math.floor(left / 86400), h = Math.floor((left % 86400) / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = (d > 0 ? d + " j " : "") + pad(h) + " h " + pad(m) + " min " + pad(s) + " s";
  }
  function tick() { document.querySelectorAll("[data-countdown]").forEach(render); }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
