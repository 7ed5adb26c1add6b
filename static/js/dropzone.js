// The recipients drop zone: drop a file on it, or click it (it is the file input's label).
(function () {
  "use strict";
  document.querySelectorAll("[data-dropzone]").forEach(function (zone) {
    var input = zone.querySelector('input[type="file"]');
    var name = zone.querySelector("[data-dropzone-name]");
    var kept = zone.parentNode.querySelector("[data-kept-file]");
    if (!input) return;

    function showChosen() {
      var file = input.files && input.files[0];
      if (name) name.textContent = file ? "Chosen: " + file.name : "";
      if (kept) kept.hidden = Boolean(file);
    }

    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragover");
      });
    });
    ["dragleave", "dragend", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () {
        zone.classList.remove("is-dragover");
      });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      var files = event.dataTransfer && event.dataTransfer.files;
      if (!files || !files.length) return;
      try {
        input.files = files;
      } catch (error) {
        return; // very old browsers: clicking still works
      }
      // As if chosen with the picker: the file is checked (upload.js) and shown.
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
    input.addEventListener("change", showChosen);
    showChosen();
  });
})();
