// Show the date, time and zone inputs only when "Schedule for later" is chosen.
// Without script they are always shown, and ignored by the server when sending now.
(function () {
  "use strict";
  var fields = document.querySelector("[data-schedule-fields]");
  var radios = document.querySelectorAll('input[name="when"]');
  if (!fields || !radios.length) return;

  function update() {
    var checked = document.querySelector('input[name="when"]:checked');
    fields.hidden = !checked || checked.value !== "schedule";
  }

  radios.forEach(function (radio) {
    radio.setAttribute("aria-controls", fields.id);
    radio.addEventListener("change", update);
  });
  update();
})();
