// Live events: Pause / Resume. While paused, every poll of #live-poller is cancelled before its
// request is made; Resume polls at once. The button is shown only when this script runs.
(function () {
  "use strict";
  var paused = false;
  function setUp() {
    var button = document.getElementById("live-pause");
    var state = document.getElementById("live-state");
    if (!button || !window.htmx) return;
    button.hidden = false;
    document.body.addEventListener("htmx:beforeRequest", function (event) {
      if (paused && event.detail.elt && event.detail.elt.id === "live-poller") event.preventDefault();
    });
    button.addEventListener("click", function () {
      paused = !paused;
      button.textContent = paused ? "Resume" : "Pause";
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      if (state) state.textContent = paused ? "Paused" : "Updates every 3 seconds";
      if (!paused) {
        var poller = document.getElementById("live-poller");
        if (poller) window.htmx.trigger(poller, "live-resume");
      }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();
})();
