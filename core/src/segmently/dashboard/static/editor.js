/* The visual editor (editor.html): talks to the snippet in the frame (snippet/README.md, "Editor
   messages"), keeps the variant's changes in the page until "Save changes" posts them, and previews
   every edit in the frame. Without this script the same form adds and removes one change at a time. */
(function () {
  "use strict";
  var dataNode = document.getElementById("editor-data");
  var form = document.getElementById("editor-form");
  var frame = document.getElementById("editor-frame");
  if (!dataNode || !form || !frame) return;
  var data = JSON.parse(dataNode.textContent || "{}");
  var changes = data.changes || [];
  var rowErrors = data.errors || {};
  var domains = data.domains || [];
  var $ = function (id) { return document.getElementById(id); };
  var kind = $("f-kind"), selector = $("f-selector"), value = $("f-value"), css = $("f-custom_css");
  var status = $("frame-status"), count = $("match-count"), rows = $("change-rows"), dirtyNote = $("dirty");
  var LABELS = { text: "New text", html: "New HTML", css: "CSS declarations", js: "JavaScript" };
  var HINTS = {
    text: "The element's new text (plain text).",
    html: "The element's new inner HTML.",
    css: "With a selector: declarations such as color: red. Without one: whole CSS rules.",
    js: "Runs after the other changes on visitors' pages; never in the editor."
  };
  var NAMES = { text: "Text", html: "HTML", css: "CSS", js: "JavaScript" };
  var VALUES = { text: "text", html: "html", css: "css", js: "code" };
  var peer = null, mode = "select", prefilled = "", matched = [], dirty = false;
  var writing = false; // the Add form holds a change written since the last "Add change"
  var lastLoad = 0, lastReady = 0, everReady = false;

  var toolbar = document.querySelector(".editor-toolbar");
  if (toolbar) toolbar.hidden = false;
  $("add-hint").textContent = "Added changes are previewed in the page; “Save changes” keeps them.";

  function onSite(origin) {
    var host;
    try { host = new URL(origin).hostname; } catch (e) { return false; }
    return domains.some(function (d, i) { return host === d || (i === 0 && host.slice(-d.length - 1) === "." + d); });
  }

  function send(message) {
    if (peer && frame.contentWindow) frame.contentWindow.postMessage(message, peer);
  }

  function say(text) { if (status) status.textContent = text; }

  // --- the change being written ----------------------------------------------------------
  function draft() {
    if (!writing) return null;
    var k = kind.value, sel = selector.value.trim(), v = value.value;
    if (k === "js") return v.trim() ? { type: "js", code: v } : null;
    if (k === "css" && !sel) return v.trim() ? { type: "css", css: v } : null;
    if (!sel) return null;
    if (k === "hide" || k === "remove") return { type: "hide", selector: sel, mode: k };
    if (!v.trim()) return null; // nothing written yet (an empty text would blank the element)
    var change = { type: k, selector: sel };
    change[VALUES[k]] = v;
    return change;
  }

  function showFields() {
    var k = kind.value;
    $("value-field").hidden = k === "hide" || k === "remove";
    $("selector-field").hidden = k === "js";
    $("f-value-label").textContent = LABELS[k] || "Value";
    if (HINTS[k]) $("f-value-hint").textContent = HINTS[k];
  }

  // --- the list ---------------------------------------------------------------------------
  function describe(change) {
    if (change.type === "hide") return [change.mode === "remove" ? "Remove" : "Hide", change.selector || "", ""];
    return [NAMES[change.type] || change.type, change.selector || "", String(change[VALUES[change.type]] || "")];
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function render() {
    rows.textContent = "";
    changes.forEach(function (change, i) {
      var d = describe(change), errors = rowErrors[String(i)] || [];
      var li = el("li", errors.length ? "has-error" : "");
      var head = el("span", "change-head");
      head.appendChild(el("strong", "change-kind", d[0]));
      head.appendChild(document.createTextNode(" "));
      head.appendChild(el("code", "change-selector", d[1] || "the whole page"));
      if (d[1] && typeof matched[i] === "number") {
        head.appendChild(el("span", "matched" + (matched[i] ? "" : " none"),
          matched[i] === 1 ? "1 match" : matched[i] ? matched[i] + " matches" : "no match on this page"));
      }
      li.appendChild(head);
      if (d[2]) li.appendChild(el("span", "change-value", d[2]));
      errors.forEach(function (message) { li.appendChild(el("p", "field-error", message)); });
      var remove = el("button", "secondary", "Remove");
      remove.type = "button";
      remove.appendChild(el("span", "visually-hidden", " change " + (i + 1) + " (" + d[0] + " " + d[1] + ")"));
      remove.addEventListener("click", function () {
        changes.splice(i, 1);
        edited();
        (rows.querySelector("button") || selector).focus();
      });
      li.appendChild(remove);
      rows.appendChild(li);
    });
    $("no-changes").hidden = changes.length > 0;
  }

  function edited() {
    rowErrors = {};
    matched = [];
    dirty = true;
    dirtyNote.textContent = "Unsaved changes";
    render();
    preview();
  }

  // --- talking to the page ------------------------------------------------------------------
  var timer = 0;
  function preview() {
    var d = draft();
    send({ type: "segmently:apply", changes: d ? changes.concat([d]) : changes.slice(), css: css ? css.value : "" });
  }
  function soon(fn) {
    clearTimeout(timer);
    timer = setTimeout(fn, 200);
  }
  var countTimer = 0;
  function highlight() {
    var sel = selector.value.trim();
    clearTimeout(countTimer);
    countTimer = setTimeout(function () {
      if (sel) send({ type: "segmently:highlight", selector: sel });
    }, 200);
  }

  function showCount(n) {
    count.textContent = n === 1 ? "1 element matches." : n ? n + " elements match." : "No element matches this selector.";
    count.className = n ? "" : "none";
  }

  function selected(m) {
    selector.value = String(m.selector || "");
    if (kind.value === "js") kind.value = "text"; // a JavaScript change has no element
    if (kind.value === "text" && (!value.value || value.value === prefilled)) {
      value.value = prefilled = String(m.text || "");
    }
    writing = true;
    showFields();
    var facts = $("selected-facts");
    facts.textContent = "";
    [["Tag", "<" + m.tag + ">"], ["Id", m.id || "—"], ["Classes", (m.classes || []).join(" ") || "—"],
      ["Text", m.label || m.text || "—"]].forEach(function (pair) {
      facts.appendChild(el("dt", "", pair[0]));
      facts.appendChild(el("dd", "", pair[1]));
    });
    $("selected").hidden = false;
    showCount(1);
    highlight();
    value.focus();
  }

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || !onSite(event.origin)) return;
    var m = event.data;
    if (!m || typeof m.type !== "string" || m.type.indexOf("segmently:") !== 0) return;
    if (m.type === "segmently:editor-ready") {
      peer = event.origin;
      lastReady = Date.now();
      everReady = true;
      $("snippet-missing").hidden = true;
      send({ type: mode === "select" ? "segmently:start" : "segmently:stop" });
      say(mode === "select" ? "Connected: click an element of the page to select it." : "Navigate: links and buttons of the page work.");
      preview();
    } else if (m.type === "segmently:select") {
      selected(m);
    } else if (m.type === "segmently:matches") {
      if (m.selector === selector.value.trim()) showCount(Number(m.count) || 0);
    } else if (m.type === "segmently:applied") {
      matched = (m.matched || []).slice(0, changes.length);
      render();
    }
  });

  frame.addEventListener("load", function () {
    lastLoad = Date.now();
    setTimeout(function () {
      if (lastReady > lastLoad - 3000) return;
      peer = null;
      if (!everReady) $("snippet-missing").hidden = false;
      say(everReady ? "This page did not start the editor: open it with “Page to edit”." : "No answer from the page.");
    }, 8000);
  });

  Array.prototype.forEach.call(document.querySelectorAll("[data-mode]"), function (button) {
    button.addEventListener("click", function () {
      mode = button.getAttribute("data-mode");
      Array.prototype.forEach.call(document.querySelectorAll("[data-mode]"), function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      send({ type: mode === "select" ? "segmently:start" : "segmently:stop" });
      say(mode === "select" ? "Select: click an element of the page to select it." : "Navigate: links and buttons of the page work.");
    });
  });

  // --- the form -----------------------------------------------------------------------------
  kind.addEventListener("change", function () { writing = true; showFields(); soon(preview); });
  selector.addEventListener("input", function () { writing = true; highlight(); soon(preview); });
  value.addEventListener("input", function () { writing = true; soon(preview); });
  if (css) css.addEventListener("input", function () { dirty = true; dirtyNote.textContent = "Unsaved changes"; soon(preview); });
  var js = $("f-custom_js");
  if (js) js.addEventListener("input", function () { dirty = true; dirtyNote.textContent = "Unsaved changes"; });

  function fieldError(field, message) {
    var input = $("f-" + field), id = "f-" + field + "-error", old = $(id);
    if (old) old.remove();
    input.closest(".field").classList.toggle("has-error", !!message);
    if (!message) { input.removeAttribute("aria-invalid"); return; }
    var p = el("p", "field-error", message);
    p.id = id;
    input.closest(".field").appendChild(p);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
  }

  form.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var action = submitter && submitter.name === "action" ? submitter.value : "save";
    if (action === "add") writing = true; // what the form holds is what to add
    var d = draft();
    if (action === "add") {
      event.preventDefault();
      var needsSelector = kind.value !== "js" && kind.value !== "css";
      fieldError("selector", needsSelector && !selector.value.trim() ? "Selector is required" : "");
      if (!d) {
        if (!needsSelector || selector.value.trim()) fieldError("value", (LABELS[kind.value] || "Value") + " is required");
        return;
      }
      fieldError("value", "");
      changes.push(d);
      value.value = prefilled = "";
      writing = false;
      edited();
      return;
    }
    // a change written and not added yet is saved too (not an untouched copy of the element's text)
    if (d && !(kind.value === "text" && value.value === prefilled)) changes.push(d);
    $("f-changes").value = JSON.stringify(changes);
    dirty = false;
  });

  window.addEventListener("beforeunload", function (event) {
    if (dirty) event.preventDefault();
  });

  showFields();
  render();
})();
