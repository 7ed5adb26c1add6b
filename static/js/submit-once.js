// Ignore a second submit of the same form (double clicks) until the next page arrives, and show
// that the first one is under way: every button of the form is disabled and the one pressed says
// what is happening (its data-busy-label), which a [data-form-status] region announces.
// upload.js drives the same state while it uploads a file, through window.formBusy.
(function () {
  "use strict";

  function buttons(form) {
    return form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"]');
  }

  function label(form, text, announce) {
    if (!text) return;
    var button = form.querySelector("[data-busy]");
    if (button) button.textContent = text;
    var region = form.querySelector("[data-form-status]");
    if (region && announce !== false) region.textContent = text;
  }

  function start(form, submitter, text) {
    form.dataset.submitting = "true";
    form.setAttribute("aria-busy", "true");
    // A disabled button is not sent with the form: its name and value travel in a hidden input.
    if (submitter && submitter.name && !form.querySelector("[data-submitter-copy]")) {
      var copy = document.createElement("input");
      copy.type = "hidden";
      copy.name = submitter.name;
      copy.value = submitter.value;
      copy.setAttribute("data-submitter-copy", "");
      form.appendChild(copy);
    }
    buttons(form).forEach(function (button) {
      if (button.disabled) return;
      button.disabled = true;
      button.setAttribute("data-busy-disabled", "");
    });
    if (submitter && submitter.matches("button")) {
      submitter.setAttribute("data-busy", "");
      submitter.classList.add("is-busy");
      // The label as written, children included, to put back if the page is shown again.
      submitter.idleLabel = Array.prototype.slice.call(submitter.childNodes);
    }
    label(form, text || (submitter && submitter.dataset.busyLabel));
  }

  function stop(form) {
    delete form.dataset.submitting;
    form.removeAttribute("aria-busy");
    var copy = form.querySelector("[data-submitter-copy]");
    if (copy) copy.remove();
    form.querySelectorAll("[data-busy]").forEach(function (button) {
      button.removeAttribute("data-busy");
      button.classList.remove("is-busy");
      if (button.idleLabel) button.replaceChildren.apply(button, button.idleLabel);
    });
    form.querySelectorAll("[data-busy-disabled]").forEach(function (button) {
      button.removeAttribute("data-busy-disabled");
      button.disabled = false;
    });
    var region = form.querySelector("[data-form-status]");
    if (region) region.textContent = "";
  }

  window.formBusy = { start: start, label: label, stop: stop };

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-submit-once") || event.defaultPrevented) return;
    if (form.dataset.submitting === "true") {
      event.preventDefault();
      return;
    }
    start(form, event.submitter);
  });

  // Coming back with the Back button restores the page from cache: let the form be sent again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submit-once]").forEach(stop);
  });
})();
