/* The live countdown of a Fatourati reference. The server-rendered text is the no-JS path. */
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick(node, deadline) {
    var left = Math.max(0, Math.floor((deadline - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    node.textContent = left > 0 ? h + " h " + pad(m) + " min " + pad(s) + " s" : "délai écoulé";
    if (left <= 0) { window.setTimeout(function () { window.location.reload(); }, 2000); return false; }
    return true;
  }
  function start() {
    document.querySelectorAll("[data-countdown]").forEach(function (node) {
      var deadline = Date.parse(node.getAttribute("data-countdown"));
      if (isNaN(deadline)) return;
      if (!tick(node, deadline)) return;
      var timer = window.setInterval(function () { if (!tick(node, deadline)) window.clearInterval(timer); }, 1000);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
