// A table too wide for the screen scrolls inside its wrapper: such a region gets a tab stop
// and a name (from its section's heading), so it can be scrolled from the keyboard and a
// screen reader says what it is. Regions that fit stay out of the tab order.
(function () {
  "use strict";

  // The staff pages' table wrappers; in the admin, a changelist's results and an inline.
  var REGIONS = ".table-wrap, #changelist .results, .inline-group";

  function label(region) {
    var section = region.closest("section, .card, form, main");
    var heading = region.querySelector("h2, caption") || (section && section.querySelector("h1, h2, h3, caption"));
    return heading ? heading.textContent.trim() : "Table";
  }

  function update() {
    document.querySelectorAll(REGIONS).forEach(function (region) {
      var scrolls = region.scrollWidth > region.clientWidth + 1;
      if (scrolls && !region.hasAttribute("data-scroll-region")) {
        region.setAttribute("tabindex", "0");
        region.setAttribute("role", "region");
        region.setAttribute("aria-label", label(region) + " (scrolls sideways)");
        region.setAttribute("data-scroll-region", "");
      } else if (!scrolls && region.hasAttribute("data-scroll-region")) {
        ["tabindex", "role", "aria-label", "data-scroll-region"].forEach(function (name) {
          region.removeAttribute(name);
        });
      }
    });
  }

  var pending = null;
  function later() {
    if (pending) return;
    pending = window.requestAnimationFrame(function () {
      pending = null;
      update();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    update();
    window.addEventListener("resize", later);
    // Tables filled in later (live campaign pages) are checked as they change.
    if (window.MutationObserver) new MutationObserver(later).observe(document.body, { childList: true, subtree: true });
  });
})();
