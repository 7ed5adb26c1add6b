// After a form is sent back, move focus (and the view) to what the person needs to read next:
// the error summary, else the preview. The first [data-focus-on-load] in the page wins.
(function () {
  "use strict";
  var target = document.querySelector("[data-focus-on-load]");
  if (!target) return;
  if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
  target.focus({ preventScroll: true });
  target.scrollIntoView({ block: "start" });
})();
