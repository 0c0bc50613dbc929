/* Pairwise labeling page: keyboard shortcuts and the time spent on each comparison.
 *
 * No framework; htmx swaps #label-panel after each action, so every listener sits on the
 * document and looks the current form up when it fires. Without this script the page still
 * works as plain forms (time_spent_ms then stays empty and is stored as null).
 */
(function () {
  "use strict";

  var STRENGTH_BY_CODE = { Digit7: "1", Digit8: "2", Digit9: "3", Digit0: "4" };
  var STRENGTH_BY_SHIFTED_CODE = { Digit1: "1", Digit2: "2", Digit3: "3", Digit4: "4" };

  var shownAt = performance.now();
  var shownAssignment = currentAssignment();

  function currentAssignment() {
    var panel = document.getElementById("label-panel");
    return panel ? panel.getAttribute("data-assignment") : null;
  }

  function judgeForm() {
    return document.getElementById("judge-form");
  }

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    if (target.tagName === "INPUT") {
      return !/^(radio|checkbox|button|submit|reset)$/.test(target.type);
    }
    return false;
  }

  function pick(form, name, value) {
    var input = form.querySelector('input[name="' + name + '"][value="' + value + '"]');
    if (!input || input.disabled) return;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Tie and Both bad carry no strength: clear and disable the strength radios.
  function syncStrength(form) {
    if (!form) return;
    var choice = form.querySelector('input[name="choice"]:checked');
    var none = !!choice && (choice.value === "tie" || choice.value === "both_bad");
    form.querySelectorAll('input[name="strength"]').forEach(function (input) {
      input.disabled = none;
      if (none) input.checked = false;
    });
  }

  function submit(id) {
    var form = document.getElementById(id);
    if (form) form.requestSubmit();
  }

  function busy() {
    return !!document.querySelector("#label-panel.htmx-request, #label-panel .htmx-request");
  }

  // Screen readers hear each new comparison (or the empty queue) from a live region that stays
  // outside the swapped panel, so it is not replaced along with it.
  function announce() {
    var region = document.getElementById("label-announce");
    if (!region) return;
    var remaining = document.querySelector("[data-testid=remaining]");
    region.textContent = currentAssignment()
      ? "Next comparison." + (remaining ? " Remaining " + remaining.textContent + "." : "")
      : "All done: nothing left to judge.";
  }

  // A new comparison on screen restarts the clock; an error re-render of the same one does not.
  // htmx keeps focus on an element with the same id after a swap (Ctrl+Enter from the rationale
  // box would leave the caret in the next comparison's box): a new comparison gets the focus on
  // the panel, so the next keys are shortcuts again.
  function onPanelShown() {
    var assignment = currentAssignment();
    if (assignment !== shownAssignment) {
      shownAssignment = assignment;
      shownAt = performance.now();
      var panel = document.getElementById("label-panel");
      if (panel && panel.contains(document.activeElement) && document.activeElement !== panel) {
        panel.focus({ preventScroll: true });
      }
      announce();
    }
    syncStrength(judgeForm());
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.name === "choice") syncStrength(event.target.form);
  });

  // Capture phase: runs before htmx (or the browser) reads the form's values.
  document.addEventListener(
    "submit",
    function (event) {
      var field = event.target.querySelector && event.target.querySelector('input[name="time_spent_ms"]');
      if (field) field.value = String(Math.max(0, Math.round(performance.now() - shownAt)));
    },
    true
  );

  document.addEventListener("keydown", function (event) {
    var form = judgeForm();
    var target = event.target;
    if (event.altKey || event.isComposing) return;
    if (event.ctrlKey || event.metaKey) {
      if (event.key === "Enter" && form) {
        event.preventDefault();
        if (!busy()) form.requestSubmit();
      }
      return;
    }
    if (isTyping(target)) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (busy()) return;

    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = true;
    if (event.shiftKey && STRENGTH_BY_SHIFTED_CODE[event.code]) {
      if (form) pick(form, "strength", STRENGTH_BY_SHIFTED_CODE[event.code]);
    } else if (event.shiftKey) {
      handled = false;
    } else if (STRENGTH_BY_CODE[event.code]) {
      if (form) pick(form, "strength", STRENGTH_BY_CODE[event.code]);
    } else if (key === "1" || key === "ArrowLeft") {
      if (form) pick(form, "choice", "left");
    } else if (key === "2" || key === "ArrowRight") {
      if (form) pick(form, "choice", "right");
    } else if (key === "t") {
      if (form) pick(form, "choice", "tie");
    } else if (key === "b") {
      if (form) pick(form, "choice", "both_bad");
    } else if (key === "r") {
      var rationale = form && form.querySelector('textarea[name="rationale"]');
      if (rationale) rationale.focus();
    } else if (key === "Enter") {
      // A focused button or link keeps its own Enter.
      if (target.tagName === "BUTTON" || target.tagName === "A" || target.tagName === "SUMMARY") return;
      if (form) form.requestSubmit();
    } else if (key === "y" || key === "n") {
      // rank: the absolute check (only on projects that ask it)
      if (form) pick(form, "acceptable", key === "y" ? "yes" : "no");
    } else if (key === "s") {
      submit("skip-form");
    } else if (key === "u") {
      submit("undo-form");
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("htmx:afterSettle", onPanelShown);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      shownAssignment = null;
      onPanelShown();
    }
  });
  syncStrength(judgeForm());
})();
