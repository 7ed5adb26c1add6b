// Copy buttons for ids: <button class="copy-id" data-copy-text="…">. They show only where the page
// may write to the clipboard; one listener serves every button, those the campaign page adds as
// its rows refresh included. A status region (data-copy-status) says what happened.
(function () {
  "use strict";
  if (!navigator.clipboard || !window.isSecureContext) return;
  document.documentElement.classList.add("can-copy");

  function say(text) {
    var status = document.querySelector("[data-copy-status]");
    if (status) status.textContent = text;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-text]");
    if (!button) return;
    navigator.clipboard.writeText(button.getAttribute("data-copy-text")).then(
      function () {
        button.textContent = "Copied";
        say("Conversation id copied.");
        window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
      },
      function () {
        say("The browser did not allow copying.");
      }
    );
  });
})();
