// Copy buttons: <button data-copy="<id of the element whose text to copy>" hidden>. Shown only
// when this script runs; after a copy the label reads "Copied" for a moment and a live region says so.
(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }
  function setUp(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var label = button.querySelector(".copy-label");
    var status = document.getElementById("copy-status");
    var timer = null;
    if (!source || !label) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      copy(source.textContent.trim()).then(function () {
        label.textContent = "Copied";
        button.setAttribute("data-state", "copied");
        if (status) status.textContent = "Copied to the clipboard.";
      }, function () {
        label.textContent = "Press Ctrl+C to copy";
        button.setAttribute("data-state", "failed");
      });
      clearTimeout(timer);
      timer = setTimeout(function () {
        label.textContent = "Copy";
        button.removeAttribute("data-state");
      }, 4000);
    });
  }
  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), setUp);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
