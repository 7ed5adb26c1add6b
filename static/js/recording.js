// The call's recording. When the player cannot load it, ask this service why (ElevenLabs has no
// recording: 404; ElevenLabs failed: 502) and say so next to the player, with a way to try again.
(function () {
  "use strict";
  var player = document.querySelector("[data-recording]");
  if (!player || !window.fetch) return;

  function show(which) {
    document.querySelectorAll("[data-recording-error]").forEach(function (message) {
      message.hidden = message.getAttribute("data-recording-error") !== which;
    });
  }

  player.addEventListener("error", function () {
    fetch(player.currentSrc || player.getAttribute("src"), { method: "HEAD", credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.status; }, function () { return 0; })
      .then(function (status) {
        if (status !== 200) show(status === 404 ? "404" : "other");
      });
  });

  document.addEventListener("click", function (event) {
    if (!event.target.closest("[data-recording-retry]")) return;
    show("");
    player.load();  // an element that failed does not try again on play by itself
    player.play().catch(function () {});
  });
})();
