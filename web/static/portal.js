/* PORTNET portal: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";

  function onReady(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  // The page's sentences for this script, in the page's language (base.html, catalogs): French if absent.
  var MESSAGES = (function () {
    var node = document.getElementById("portal-messages");
    try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
  })();
  function t(key, fallback, values) {
    var text = MESSAGES[key] || fallback;
    Object.keys(values || {}).forEach(function (name) { text = text.split("%(" + name + ")s").join(String(values[name])); });
    return text;
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text); // never innerHTML: partner data
    if (className) node.className = className;
    return node;
  }

  // The CMI hand-off page: post the hidden form at once (the visible button is the no-JS path).
  function autosubmit() {
    var form = document.querySelector("form[data-autosubmit]");
    if (form) window.setTimeout(function () { form.submit(); }, 150);
  }

  // "Lignes par page" belongs to the search form: applying it needs no extra click.
  function autosubmitOnChange() {
    document.querySelectorAll("[data-autosubmit-change]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (!select.form) return;
        if (select.form.requestSubmit) select.form.requestSubmit();
        else select.form.submit();
      });
    });
  }

  // Blank criteria stay out of the address, so a bookmarked search reads well.
  function compactSearch() {
    var form = document.getElementById("search-form");
    if (!form) return;
    var blanked = [];
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (f) {
        if (f.name && !f.disabled && f.value === "") { f.disabled = true; blanked.push(f); }
      });
      window.setTimeout(function () {
        blanked.forEach(function (f) { f.disabled = false; });
        blanked = [];
      }, 0);
    });
  }

  // Selection of invoices to settle: a select-all box and a live count.
  function selection() {
    var form = document.querySelector("form[data-selection-form]");
    if (!form) return;
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[name=invoice_ids]:not(:disabled)"));
    var all = form.querySelector("[data-select-all]");
    var count = form.querySelector("[data-selection-count]");
    var submit = form.querySelector("button[type=submit]");
    function update() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) {
        count.textContent = n === 0 ? t("selected_none", "Aucune facture sélectionnée")
          : n === 1 ? t("selected_one", "1 facture sélectionnée")
          : t("selected_many", "%(count)s factures sélectionnées", { count: n });
      }
      if (submit) submit.disabled = n === 0;
      if (all) {
        all.checked = n > 0 && n === boxes.length;
        all.indeterminate = n > 0 && n < boxes.length;
      }
    }
    if (all) {
      if (boxes.length) all.hidden = false;
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  // "Payer avec …": the button names the chosen channel.
  function payButton() {
    var form = document.querySelector("form[data-pay-form]");
    if (!form) return;
    var name = form.querySelector("[data-channel-name]");
    form.querySelectorAll("input[name=channel]").forEach(function (radio) {
      radio.addEventListener("change", function () {
        if (radio.checked && name) name.textContent = radio.getAttribute("data-label") || "";
      });
    });
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) window.setTimeout(function () { button.disabled = true; }, 0); // no double start
    });
  }

  // Emitter look-up dialog; the link it enhances leads to the same look-up as a page.
  function emitterDialog() {
    var trigger = document.querySelector("[data-emitter-lookup]");
    var dialog = document.getElementById("emitter-dialog");
    var field = document.getElementById("f-emitter");
    if (!trigger || !dialog || !field || typeof dialog.showModal !== "function" || !window.fetch) return;
    var search = dialog.querySelector("[data-emitter-search]");
    var input = dialog.querySelector("#emitter-q");
    var rows = dialog.querySelector("[data-emitter-rows]");
    var status = dialog.querySelector("[data-emitter-status]");
    var seq = 0;

    function pick(code) {
      field.value = code;
      dialog.close();
      field.focus();
    }

    function show(list) {
      rows.replaceChildren();
      list.forEach(function (e) {
        var tr = el("tr");
        tr.tabIndex = 0;
        var first = el("td");
        var button = el("button", e.code, "row-pick");
        button.type = "button";
        button.setAttribute("aria-label", t("choose_emitter", "Choisir %(name)s (%(code)s)", { name: e.name, code: e.code }));
        first.appendChild(button);
        tr.appendChild(first);
        [e.name, e.cin, e.rc_centre, e.rc_number, e.ifu, e.address].forEach(function (v) { tr.appendChild(el("td", v || "")); });
        tr.appendChild(el("td", e.active ? "✓" : "—", e.active ? "ok center" : "muted center"));
        tr.addEventListener("click", function () { pick(e.code); });
        tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { ev.preventDefault(); pick(e.code); } });
        rows.appendChild(tr);
      });
      status.textContent = list.length ? t("emitters_found", "%(count)s émetteur(s)", { count: list.length })
        : t("emitters_none", "Aucun émetteur ne correspond.");
    }

    function load() {
      var mine = ++seq;
      status.textContent = t("searching", "Recherche…");
      fetch("/api/v1/emitters?q=" + encodeURIComponent(input.value.trim()), {
        headers: { Accept: "application/json" }, credentials: "same-origin"
      }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      }).then(function (list) {
        if (mine === seq) show(list);
      }).catch(function () {
        if (mine === seq) status.textContent = t("search_failed", "La recherche a échoué ; réessayez.");
      });
    }

    trigger.addEventListener("click", function (ev) {
      ev.preventDefault();
      input.value = field.value;
      dialog.showModal();
      input.focus();
      load();
    });
    search.addEventListener("submit", function (ev) { ev.preventDefault(); load(); });
    var timer = null;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(load, 250);
    });
    dialog.querySelectorAll("[data-close-dialog]").forEach(function (b) {
      b.addEventListener("click", function () { dialog.close(); });
    });
    dialog.addEventListener("click", function (ev) { if (ev.target === dialog) dialog.close(); });
  }

  // "Nouvelle demande de facture": the terminal chosen is the emitter; the id fields follow it.
  function terminalChoice() {
    var select = document.querySelector("select[data-terminal]");
    if (!select) return;
    var fields = document.querySelector("[data-terminal-fields]");
    var heading = document.querySelector("[data-emitter-label]");
    function sync() {
      var option = select.options[select.selectedIndex];
      if (fields) fields.hidden = !select.value;
      if (heading) heading.textContent = (option && select.value) ? option.getAttribute("data-emitter") : t("choose_terminal", "choisissez le terminal");
    }
    select.addEventListener("change", sync);
    sync();
  }

  // A table wider than the screen scrolls: keyboard users must be able to reach it (templates that
  // do not say so themselves get it here).
  function scrollableTables() {
    document.querySelectorAll(".table-wrap:not([tabindex])").forEach(function (wrap) {
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", t("scrollable_table", "Tableau (défilement horizontal possible)"));
    });
  }

  // A live payment's status page: wait on the API's long-poll and reload once the status has changed
  // (without this script, the page reloads itself every 3 s through its <noscript> refresh).
  function statusWatch() {
    var node = document.querySelector("[data-status-watch]");
    if (!node || !window.fetch) return;
    var url = node.getAttribute("data-status-watch");
    var since = node.getAttribute("data-status");
    var live = node.querySelector("[data-status-live]");
    if (live) live.hidden = false;
    var failures = 0;
    function later(seconds) { window.setTimeout(watch, seconds * 1000); }
    function watch() {
      fetch(url + "?wait=25&since=" + encodeURIComponent(since), {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store"
      }).then(function (r) {
        if (r.status === 429) { later(Number(r.headers.get("Retry-After")) || 3); return; }
        if (!r.ok) throw new Error(r.status);
        return r.json().then(function (payment) {
          failures = 0;
          if (payment.status !== since) window.location.reload();
          else later(0);
        });
      }).catch(function () {
        // Offline, signed out, server restarting: a few retries, then the page as the server renders it.
        failures += 1;
        if (failures >= 3) window.location.reload();
        else later(3);
      });
    }
    watch();
  }

  // A MARSA MAROC request being retrieved: the API asked each second, the page shown again once a page
  // of invoices has come in or the request has ended (without this script, it reloads itself every 2 s).
  function requestWatch() {
    var node = document.querySelector("[data-request-watch]");
    if (!node || !window.fetch) return;
    var url = node.getAttribute("data-request-watch");
    var shown = node.getAttribute("data-request-progress");
    var failures = 0;
    function watch() {
      fetch(url, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store"
      }).then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json().then(function (request) {
          failures = 0;
          var progress = request.progress.pages_done + "/" + request.progress.pages_total;
          if (request.status !== "running" || progress !== shown) window.location.reload();
          else window.setTimeout(watch, 1000);
        });
      }).catch(function () {
        // Offline, signed out, server restarting: a few retries, then the page as the server renders it.
        failures += 1;
        if (failures >= 3) window.location.reload();
        else window.setTimeout(watch, 2000);
      });
    }
    window.setTimeout(watch, 1000);
  }

  // A payment that has just succeeded, its receipt laid out a moment after the settlement: the API
  // asked every second, the page shown again once it offers the receipt (without this script, it
  // reloads itself every 3 s; the server stops asking for either a while after the payment).
  function receiptWatch() {
    var node = document.querySelector("[data-receipt-watch]");
    if (!node || !window.fetch) return;
    var url = node.getAttribute("data-receipt-watch");
    var looks = 0;
    function watch() {
      looks += 1;
      fetch(url, {
        headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store"
      }).then(function (r) {
        // Signed out, or the payment not this user's: nothing more to ask.
        if (r.status >= 400 && r.status < 500 && r.status !== 429) return;
        if (!r.ok) throw new Error(r.status);
        return r.json().then(function (payment) {
          if (payment.receipt_url) window.location.reload();
          else if (looks < 120) window.setTimeout(watch, 1000);
        });
      }).catch(function () {
        if (looks < 120) window.setTimeout(watch, 3000);
      });
    }
    window.setTimeout(watch, 1000);
  }

  onReady(function () {
    statusWatch();
    requestWatch();
    receiptWatch();
    scrollableTables();
    terminalChoice();
    autosubmit();
    autosubmitOnChange();
    compactSearch();
    selection();
    payButton();
    emitterDialog();
  });
})();
