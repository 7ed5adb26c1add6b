// The file of a form[data-upload-url], checked before any of it is sent and uploaded with a
// progress bar. Its input carries the server's rules (campaigns/web/files.py): the extensions it
// reads, the size limit, and what to say about any other file. A file that breaks them is named
// under the input and not sent. On submit the file goes alone to data-upload-url, which keeps it
// and answers its token; the form is then posted with that token instead of the file, as after a
// preview. Without script, or when the upload answers something unexpected, the form posts the
// file itself; the server checks the file again either way.
(function () {
  "use strict";
  var MEGABYTE = 1048576;

  function sizeInWords(bytes) {
    return (bytes / MEGABYTE).toFixed(1).replace(/\.0$/, "") + " MB";
  }

  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function extensionOf(name) {
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot).toLowerCase() : "";
  }

  // What files.refusal() would say about the file, or "" when it may be sent.
  function refusal(input, file) {
    var rules = input.dataset;
    var kind = extensionOf(file.name);
    if ((rules.extensions || "").split(" ").indexOf(kind) === -1) {
      var advice = {};
      try {
        advice = JSON.parse(rules.advice || "{}");
      } catch (error) {
        advice = {};
      }
      return fill(advice[kind] || rules.otherType, { name: file.name });
    }
    var limit = Number(rules.maxBytes);
    if (limit && file.size > limit) {
      return fill(rules.tooLarge, { name: file.name, size: sizeInWords(file.size), limit: sizeInWords(limit) });
    }
    return "";
  }

  document.querySelectorAll("form[data-upload-url]").forEach(function (form) {
    var input = form.querySelector('input[type="file"][data-max-bytes]');
    var token = form.querySelector("[data-upload-token]");
    if (!input || !token) return;
    var errors = form.querySelector("[data-file-error]");
    var progress = form.querySelector("[data-upload-progress]");
    var bar = progress && progress.querySelector("progress");
    var progressLabel = progress && progress.querySelector("[data-upload-progress-label]");
    var field = input.closest(".field");
    var kept = field && field.querySelector("[data-kept-file]");
    var busy = null; // submit-once.js's, looked up on submit: it may load after this script

    function describedBy(id, on) {
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (each) {
        return each && each !== id;
      });
      if (on) ids.push(id);
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    }

    function showError(message) {
      if (!errors) return;
      errors.textContent = message;
      errors.hidden = !message;
      describedBy(errors.id, Boolean(message));
      if (message) input.setAttribute("aria-invalid", "true");
      else if (!field || !field.querySelector(".field__errors:not([data-file-error])")) input.removeAttribute("aria-invalid");
      if (field && !field.hasAttribute("data-invalid-from-server")) field.classList.toggle("field--invalid", Boolean(message));
    }

    // Forget the refused file, so that nothing can send it; the drop zone forgets it too.
    function refuse(message) {
      showError(message);
      input.value = "";
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function showProgress(name) {
      if (!progress || !bar) return;
      if (progressLabel) progressLabel.textContent = "Uploading " + name;
      bar.value = 0;
      progress.hidden = false;
    }

    function hideProgress() {
      if (progress) progress.hidden = true;
    }

    if (field && field.classList.contains("field--invalid")) field.setAttribute("data-invalid-from-server", "");

    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      // A file uploaded before is used unless another is chosen.
      if (kept) kept.hidden = Boolean(file);
      if (!file) return; // nothing chosen, or a refused file just forgotten: its error stays
      var problem = refusal(input, file);
      if (problem) refuse(problem);
      else showError("");
    });

    function postAsItIs() {
      // The upload could not be made here: the form sends the file itself, and the server answers.
      hideProgress();
      busy.label(form, "Uploading…");
      form.submit();
    }

    function upload(file, submitter) {
      var announced = 0;
      busy.start(form, submitter, "Uploading… 0%");
      showError("");
      showProgress(file.name);

      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.append("file", file);
      if (token.value) data.append("replaces", token.value);

      var request = new XMLHttpRequest();
      request.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable || !event.total) return;
        // 100% only once the server has kept the file.
        var percent = Math.min(99, Math.floor((100 * event.loaded) / event.total));
        if (bar) bar.value = percent;
        // The button shows every step; a screen reader hears every quarter.
        var quarter = Math.floor(percent / 25) * 25;
        busy.label(form, "Uploading… " + percent + "%", quarter > announced);
        announced = Math.max(announced, quarter);
      });
      request.addEventListener("load", function () {
        var answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch (error) {
          answer = null;
        }
        if (request.status === 201 && answer && answer.token) {
          if (bar) bar.value = 100;
          token.value = answer.token;
          input.disabled = true; // sent as its token: the file itself is not posted again
          busy.label(form, (submitter && submitter.dataset.busyLabel) || "Checking the file…");
          form.submit();
        } else if (answer && answer.error) {
          busy.stop(form);
          hideProgress();
          refuse(answer.error);
        } else {
          postAsItIs();
        }
      });
      ["error", "timeout"].forEach(function (type) {
        request.addEventListener(type, function () {
          busy.stop(form);
          hideProgress();
          showError("The upload of “" + file.name + "” stopped before it ended. Check the connection and try again.");
        });
      });
      request.open("POST", form.dataset.uploadUrl);
      request.setRequestHeader("Accept", "application/json");
      request.send(data);
    }

    form.addEventListener("submit", function (event) {
      if (form.dataset.submitting === "true") {
        event.preventDefault();
        return;
      }
      var file = !input.disabled && input.files && input.files[0];
      busy = window.formBusy;
      if (!file || !busy || !window.FormData) return; // submit-once.js takes it from here
      event.preventDefault();
      var problem = refusal(input, file);
      if (problem) refuse(problem);
      else upload(file, event.submitter);
    });

    // Back to this page from the next one (the browser's cache): the file may be sent again.
    window.addEventListener("pageshow", function () {
      input.disabled = false;
      hideProgress();
    });
  });
})();
