// Refresh the campaign's progress region every 3 seconds while the campaign is active, from
// its progress.json; stop once its status is final (completed, failed or cancelled).
(function () {
  "use strict";
  var region = document.querySelector("[data-progress-url]");
  if (!region || region.getAttribute("data-final") === "true" || !window.fetch) return;

  var url = region.getAttribute("data-progress-url");
  var every = 3000;
  var delay = every;
  var formatter = new Intl.NumberFormat();
  var timer = null;
  var inFlight = false;
  var final = false;

  function setText(selector, value) {
    document.querySelectorAll(selector).forEach(function (element) {
      element.textContent = value;
    });
  }

  function render(data) {
    setText("[data-progress-finished]", formatter.format(data.calls_finished));
    setText("[data-progress-total]", formatter.format(data.recipients_count));
    setText("[data-progress-dispatched]", formatter.format(data.calls_dispatched));
    setText("[data-progress-percent]", data.percent);
    setText("[data-progress-status]", data.status_display);

    var bar = document.querySelector("[data-progress-bar]");
    if (bar) {
      bar.setAttribute("aria-valuenow", data.percent);
      var fill = bar.firstElementChild;
      if (fill) {
        fill.style.width = data.percent + "%";
        fill.classList.toggle("progress__fill--active", !data.final);
      }
    }

    document.querySelectorAll("[data-status-badge]").forEach(function (badge) {
      badge.className = "badge badge--" + data.status;
      badge.textContent = data.status_display;
    });

    var total = 0;
    Object.keys(data.counts).forEach(function (status) { total += data.counts[status]; });
    Object.keys(data.counts).forEach(function (status) {
      var count = data.counts[status];
      setText('[data-count="' + status + '"]', formatter.format(count));
      var bar = document.querySelector('[data-bar="' + status + '"]');
      if (bar) bar.style.width = (total ? Math.round((100 * count) / total) : 0) + "%";
    });

    // Policy campaigns: finished calls per time zone, and when ElevenLabs calls next.
    (data.zones || []).forEach(function (row) {
      setText('[data-zone-finished="' + row.zone + '"]', formatter.format(row.finished));
    });
    renderNextCall(data.next_call_at);

    if (data.final) {
      final = true;
      region.setAttribute("data-final", "true");
      document.querySelectorAll("[data-active-only]").forEach(function (element) {
        element.hidden = true;
      });
      var note = document.querySelector("[data-final-note]");
      if (note) note.hidden = false;
    }
  }

  function renderNextCall(value) {
    var time = document.querySelector("[data-next-call]");
    var row = document.querySelector("[data-next-call-row]");
    if (!time || !row || value === undefined) return;
    row.hidden = !value;
    if (!value) return;
    var previous = time.getAttribute("datetime");
    if (previous && new Date(previous).getTime() === new Date(value).getTime()) return;
    time.setAttribute("datetime", value);
    try {
      time.textContent = new Intl.DateTimeFormat(undefined, {
        weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: time.getAttribute("data-zone") || "UTC", timeZoneName: "short"
      }).format(new Date(value));
    } catch (error) {
      time.textContent = value;
    }
  }

  function schedule() {
    if (!final && !document.hidden) timer = window.setTimeout(refresh, delay);
  }

  function refresh() {
    timer = null;
    inFlight = true;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        delay = every;
        render(data);
      })
      .catch(function () {
        // A network blip or an expired session: try again, less and less often.
        delay = Math.min(delay * 2, 60000);
      })
      .then(function () {
        inFlight = false;
        schedule();
      });
  }

  // No need to poll a tab nobody is looking at; catch up as soon as it is visible again.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer) window.clearTimeout(timer);
      timer = null;
    } else if (!timer && !inFlight && !final) {
      refresh();
    }
  });

  schedule();
})();
