// Preset a fresh form's time zone select (data-detect-timezone) to the browser's own zone.
(function () {
  "use strict";
  var select = document.querySelector("select[data-detect-timezone]");
  if (!select || !window.Intl) return;
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  var known = Array.prototype.some.call(select.options, function (option) {
    return option.value === zone;
  });
  if (zone && known) select.value = zone;
})();
