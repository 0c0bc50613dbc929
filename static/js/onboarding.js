/* Pairwise onboarding page: keys for the qualification items (1 left, 2 right, T tie, B both
 * bad), Enter on the acknowledgement. The page works as plain forms without it. */
(function () {
  "use strict";
  var KEYS = { "1": "answer-a", "2": "answer-b" };
  function click(selector) {
    var button = document.querySelector(selector);
    if (button) button.click();
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (KEYS[key]) click("#" + KEYS[key]);
    else if (key === "t") click('#qualification-form button[value="tie"]');
    else if (key === "b") click('#qualification-form button[value="both_bad"]');
    else return;
    event.preventDefault();
  });
  function focusMain() {
    var target = document.getElementById("acknowledge") || document.getElementById("start-work");
    if (target) target.focus();
  }
  document.addEventListener("htmx:afterSettle", focusMain);
  focusMain();
})();
