// Live pages: the server tells us (Server-Sent Events from /portal/watch, fed by the API's
// watch streams) that something this page shows changed; we fetch the page again as a
// fragment and swap each [data-live] section by id. No framework, no build step.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.watch || !window.EventSource) return;
  var state = document.getElementById("live-state");
  var timer = null, busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { headers: { "X-Portal-Fragment": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var doc = new DOMParser().parseFromString("<div>" + html + "</div>", "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh) old.replaceWith(fresh);
        });
        main.dataset.refreshed = String(Number(main.dataset.refreshed || 0) + 1);
      })
      .catch(function () { /* the next change retries */ })
      .finally(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 400);
  }

  var url = "/portal/watch?kinds=" + encodeURIComponent(main.dataset.watch) +
    (main.dataset.namespace ? "&namespace=" + encodeURIComponent(main.dataset.namespace) : "") +
    // Watch from the version the page was rendered at: a change made between the render
    // and this stream's start (a launch bound in that gap) still refreshes the page.
    (main.dataset.since ? "&since=" + encodeURIComponent(main.dataset.since) : "");
  var source = new EventSource(url);
  source.onopen = function () { if (state) state.textContent = "live"; };
  source.onmessage = schedule;
  source.onerror = function () { if (state) state.textContent = "reconnecting…"; };
  window.addEventListener("pagehide", function () { source.close(); });
})();
