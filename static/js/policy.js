// Show the "time zone for everyone" select only when that clock is chosen.
// Without script it is always shown, and the server ignores it for each person's own time.
(function () {
  "use strict";
  var zone = document.querySelector("[data-policy-zone]");
  var radios = document.querySelectorAll('input[name="clock"]');
  if (!zone || !radios.length) return;

  function update() {
    var checked = document.querySelector('input[name="clock"]:checked');
    zone.hidden = !checked || checked.value !== "zone";
  }

  radios.forEach(function (radio) {
    radio.setAttribute("aria-controls", zone.id);
    radio.addEventListener("change", update);
  });
  update();
})();
