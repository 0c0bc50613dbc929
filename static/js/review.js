/* Pairwise review pages: keyboard moves.
 *
 * List: "/" focuses the text filter (Escape leaves it), j / k move between the comparisons' links (Enter opens).
 * One comparison: c focuses the comment box, d the adjudication's first choice.
 * Keys typed into a field are left alone. Without this script the pages work as plain links
 * and forms.
 */
(function () {
  "use strict";

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName === "INPUT") {
      return !/^(radio|checkbox|button|submit|reset)$/.test(target.type);
    }
    return false;
  }

  function rowLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-review-row] a"));
  }

  function move(step) {
    var links = rowLinks();
    if (!links.length) return;
    var index = links.indexOf(document.activeElement);
    var next = index < 0 ? (step > 0 ? 0 : links.length - 1) : index + step;
    next = Math.max(0, Math.min(links.length - 1, next));
    links[next].focus();
  }

  function focusFirst(selector) {
    var element = document.querySelector(selector);
    if (element) {
      element.focus();
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && isTyping(event.target) && event.target.closest("#review-filters")) {
      event.target.blur();  // back to the keys: j / k move through the results
      event.preventDefault();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    var handled = false;
    if (event.key === "/") handled = focusFirst("#review-filters input[name=q]");
    else if (event.key === "j") { move(1); handled = true; }
    else if (event.key === "k") { move(-1); handled = true; }
    else if (event.key === "c") handled = focusFirst("#review-comments textarea");
    else if (event.key === "d") handled = focusFirst("#review-adjudication input[name=choice]");
    if (handled) event.preventDefault();
  });
})();
