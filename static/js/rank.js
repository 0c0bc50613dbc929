/* Pairwise ranking page: order K responses with the keyboard (drag also works).
 *
 * The form posts one rank-<id> number per response (equal numbers: a tie), so the page works
 * without this script (type the numbers). Here: Up/Down (or K/J) select a response, Shift+Up/
 * Shift+Down (or Shift+K/J) move it, "=" ties it with the one above (again: untie), 1-9 select by
 * position, Enter submits, S skips, U takes the last ranking back. After every change the numbers
 * are rewritten from the order on screen and a live region says where the response now stands.
 * htmx swaps #rank-panel after each action; listeners sit on the document.
 */
(function () {
  "use strict";

  var shownAt = performance.now();
  var shownLease = currentLease();

  function currentLease() {
    var panel = document.getElementById("rank-panel");
    return panel ? panel.getAttribute("data-lease") : null;
  }

  function items() {
    var list = document.getElementById("rank-list");
    return list ? Array.prototype.slice.call(list.querySelectorAll(".rank-item")) : [];
  }

  function selected() {
    var active = document.activeElement;
    return active && active.classList && active.classList.contains("rank-item") ? active : null;
  }

  function announce(text) {
    var status = document.getElementById("rank-status");
    if (status) status.textContent = text;
  }

  // Rewrite the rank numbers from the order on screen: a tied item shares the rank above.
  function renumber() {
    var rank = 0;
    items().forEach(function (item, index) {
      if (index === 0) item.classList.remove("tied");
      if (!item.classList.contains("tied")) rank += 1;
      var input = item.querySelector(".rank-input");
      if (input) input.value = String(rank);
    });
  }

  function rankOf(item) {
    var input = item.querySelector(".rank-input");
    return input ? input.value : "?";
  }

  function say(item, verb) {
    var list = items();
    var tied = item.classList.contains("tied") ? ", tied with the one above" : "";
    announce(verb + ": position " + (list.indexOf(item) + 1) + " of " + list.length + ", rank " + rankOf(item) + tied);
  }

  function focusAt(index) {
    var list = items();
    if (!list.length) return;
    var item = list[Math.max(0, Math.min(list.length - 1, index))];
    item.focus();
    say(item, "Selected");
  }

  function move(item, step) {
    var list = items();
    var index = list.indexOf(item);
    var target = index + step;
    if (index < 0 || target < 0 || target >= list.length) return;
    var parent = item.parentNode;
    if (step < 0) parent.insertBefore(item, list[target]);
    else parent.insertBefore(item, list[target].nextSibling);
    renumber();
    item.focus();
    say(item, "Moved");
  }

  function toggleTie(item) {
    if (items().indexOf(item) <= 0) return;
    item.classList.toggle("tied");
    renumber();
    say(item, item.classList.contains("tied") ? "Tied" : "Untied");
  }

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(target.type);
  }

  function busy() {
    return !!document.querySelector("#rank-panel.htmx-request, #rank-panel .htmx-request");
  }

  function submitForm(id) {
    var form = document.getElementById(id);
    if (form && !busy()) form.requestSubmit();
  }

  document.addEventListener(
    "submit",
    function (event) {
      var field = event.target.querySelector && event.target.querySelector('input[name="time_spent_ms"]');
      if (field && event.target.id === "rank-form") {
        field.value = String(Math.max(0, Math.round(performance.now() - shownAt)));
      }
    },
    true
  );

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("rank-panel")) return;
    if (event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (busy()) return;
    var item = selected();
    var list = items();
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var handled = true;
    if (key === "ArrowDown" || key === "j") {
      if (event.shiftKey && item) move(item, 1);
      else focusAt(item ? list.indexOf(item) + 1 : 0);
    } else if (key === "ArrowUp" || key === "k") {
      if (event.shiftKey && item) move(item, -1);
      else focusAt(item ? list.indexOf(item) - 1 : 0);
    } else if (key === "=" || key === "+") {
      if (item) toggleTie(item);
    } else if (/^[1-9]$/.test(key) && !event.shiftKey) {
      focusAt(Number(key) - 1);
    } else if (key === "Enter") {
      var tag = event.target.tagName;
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      submitForm("rank-form");
    } else if (key === "s") {
      submitForm("rank-skip-form");
    } else if (key === "u") {
      submitForm("rank-undo-form");
    } else {
      handled = false;
    }
    if (handled) event.preventDefault();
  });

  // Drag and drop (optional; the keyboard does everything).
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".rank-item");
    if (!item) return;
    dragged = item;
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", function (event) {
    if (dragged && event.target.closest && event.target.closest(".rank-item")) event.preventDefault();
  });
  document.addEventListener("drop", function (event) {
    var over = event.target.closest && event.target.closest(".rank-item");
    if (!dragged || !over || over === dragged) return;
    event.preventDefault();
    var list = items();
    var parent = over.parentNode;
    if (list.indexOf(dragged) < list.indexOf(over)) parent.insertBefore(dragged, over.nextSibling);
    else parent.insertBefore(dragged, over);
    renumber();
    dragged.focus();
    say(dragged, "Moved");
    dragged = null;
  });

  // A new set on screen restarts the clock; focus goes to the first response, not a text box.
  function onPanelShown() {
    var lease = currentLease();
    if (lease !== shownLease) {
      shownLease = lease;
      shownAt = performance.now();
    }
    var list = items();
    if (list.length) list[0].focus();
  }
  document.addEventListener("htmx:afterSettle", onPanelShown);
  onPanelShown();
})();
