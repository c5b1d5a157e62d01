// The experiment wizard: a goal shows only the inputs its type uses (all of them without JavaScript).
(function () {
  "use strict";
  function sync(goal) {
    var select = goal.querySelector(".goal-type select");
    if (!select) return;
    goal.querySelectorAll(".for-click, .for-form_submit, .for-page_view, .for-custom_event").forEach(function (field) {
      field.classList.toggle("off", !field.classList.contains("for-" + select.value));
    });
  }
  document.addEventListener("change", function (event) {
    var goal = event.target.closest && event.target.closest(".goal");
    if (goal) sync(goal);
  });
  document.querySelectorAll(".goal").forEach(sync);
})();
