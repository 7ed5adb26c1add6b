// Copy buttons: data-copy-target="<id of the input holding the text>".
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    var status = document.querySelector("[data-copy-status]");
    if (!input || !navigator.clipboard) return;
    button.hidden = false;

    function say(text) {
      if (status) status.textContent = text;
    }

    button.addEventListener("click", function () {
      navigator.clipboard.writeText(input.value).then(
        function () {
          button.textContent = "Copied";
          say("The key is on your clipboard.");
          window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
        },
        function () {
          input.select();
          say("Copying was blocked by the browser: the key is selected, press Ctrl+C or ⌘C.");
        }
      );
    });
  });
})();
