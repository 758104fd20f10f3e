// The dashboard's only script, served from /__admin/static/ so the pages' Content-Security-Policy can
// forbid inline script (an injected <script> would not run).
"use strict";

// Forms that change the mock (Reset, Load a scenario) ask before they send.
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
});

// The journal refreshes its rows every 2 s while the box is ticked; the filters stay as they are.
var auto = document.getElementById("auto");
if (auto) {
  setInterval(function () {
    if (!auto.checked) return;
    var params = new URLSearchParams(new FormData(document.getElementById("filters")));
    params.set("partial", "1");
    fetch("?" + params.toString()).then(function (r) { return r.text(); })
      .then(function (html) { document.getElementById("rows").innerHTML = html; });
  }, 2000);
}

// "Copy as curl" on a request's page: the command shown in <pre id="curl"> goes to the clipboard
// (the Clipboard API where the page may use it, else a selection and the copy command).
var copyButton = document.getElementById("copy-curl");
if (copyButton) {
  copyButton.addEventListener("click", function () {
    var source = document.getElementById(copyButton.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    var text = source.textContent;
    function fallback() {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var copied = document.execCommand("copy");
      status.textContent = copied ? "Copied." : "Selected: press Ctrl+C to copy.";
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { status.textContent = "Copied."; }, fallback);
    } else {
      fallback();
    }
  });
}
