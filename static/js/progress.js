// Keep the campaign page in step while the campaign runs. Every 3 seconds it reads progress.json,
// asking for the page's own filter, search and page of recipients, and puts in place the counters,
// the outcome chart, the rates, the batches, the buttons and each row's outcome; nothing else on the
// page moves, and nothing is reloaded. It stops once the campaign is final (ended, and every call's
// outcome in). Only the counters (their region is aria-live) and a new failure notice (an alert)
// are announced to screen readers.
(function () {
  "use strict";
  var region = document.querySelector("[data-progress-url]");
  if (!region || region.getAttribute("data-final") === "true" || !window.fetch) return;

  var url = region.getAttribute("data-progress-url") + window.location.search;
  var every = 3000;
  var delay = every;
  var formatter = new Intl.NumberFormat();
  var timer = null;
  var inFlight = false;
  var final = false;
  var DASH = "\u2014";

  function setText(selector, value) {
    document.querySelectorAll(selector).forEach(function (element) {
      if (element.textContent !== String(value)) element.textContent = value;
    });
  }

  // Widths come from the stylesheet's pct-0 … pct-100 classes: the policy allows no style attribute.
  function setPercent(element, value) {
    if (!element) return;
    Array.prototype.slice.call(element.classList).forEach(function (name) {
      if (/^pct-\d+$/.test(name)) element.classList.remove(name);
    });
    element.classList.add("pct-" + Math.max(0, Math.min(100, value | 0)));
  }

  function make(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function dash() {
    return make("span", "muted", DASH);
  }

  function time(iso, text, title) {
    var element = make("time", "", text);
    element.setAttribute("datetime", iso);
    if (title) element.title = title;
    return element;
  }

  // --- Counters, chart, rates, batches, buttons -------------------------------------------------

  function renderProgress(data) {
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
        setPercent(fill, data.percent);
        fill.classList.toggle("progress__fill--active", !data.final);
      }
    }

    document.querySelectorAll("[data-status-badge]").forEach(function (badge) {
      badge.className = "badge badge--" + data.status;
      badge.textContent = data.status_display;
    });

    var outcomes = data.outcomes;
    outcomes.pipeline.concat(outcomes.finished).forEach(function (row) {
      setText('[data-count="' + row.key + '"]', formatter.format(row.count));
      setPercent(document.querySelector('[data-bar="' + row.key + '"]'), row.pct);
    });
    setText('[data-outcome-total="pipeline"]', formatter.format(outcomes.pipeline_total));
    setText('[data-outcome-total="finished"]', formatter.format(outcomes.finished_total));
    setText('[data-rate="answer"]', data.rates.answer);
    setText('[data-rate="success"]', data.rates.success);

    renderBatches(data.batch_ids);
    renderActions(data.actions, data.actions_html);
    renderNotices(data.notices_key, data.notices_html);

    // Policy campaigns: finished calls per time zone, and when ElevenLabs calls next.
    (data.zones || []).forEach(function (row) {
      setText('[data-zone-finished="' + row.zone + '"]', formatter.format(row.finished));
    });
    renderNextCall(data.next_call_at);
  }

  function renderBatches(ids) {
    var cell = document.querySelector("[data-batch-ids]");
    if (!cell || cell.getAttribute("data-shown") === ids.join(" ")) return;
    cell.setAttribute("data-shown", ids.join(" "));
    cell.replaceChildren.apply(cell, ids.length ? ids.map(function (id) {
      return make("code", "small", id);
    }) : [make("span", "muted", "Not submitted yet")]);
  }

  function renderActions(actions, html) {
    var box = document.querySelector("[data-campaign-actions]");
    var shown = actions.join(" ");
    if (!box) return;
    if (!box.hasAttribute("data-shown")) {
      // What the page was rendered with: the forms it holds.
      box.setAttribute("data-shown", Array.prototype.map.call(box.querySelectorAll("form"), function (form) {
        return form.getAttribute("action").split("/").pop();
      }).join(" "));
    }
    if (box.getAttribute("data-shown") === shown) return;
    box.setAttribute("data-shown", shown);
    // The server's own rendering of the buttons (escaped, with their CSRF tokens); no script in it.
    box.innerHTML = html;
  }

  // The failure and paused notices, as the server renders them (escaped; no script in them). They
  // are swapped only when what they say changes, so an alert is announced once, when it appears.
  function renderNotices(key, html) {
    var box = document.querySelector("[data-campaign-notices]");
    if (!box || key === undefined || box.getAttribute("data-shown") === key) return;
    box.setAttribute("data-shown", key);
    box.innerHTML = html;
  }

  function renderNextCall(value) {
    var element = document.querySelector("[data-next-call]");
    var row = document.querySelector("[data-next-call-row]");
    if (!element || !row || value === undefined) return;
    row.hidden = !value;
    if (!value) return;
    var previous = element.getAttribute("datetime");
    if (previous && new Date(previous).getTime() === new Date(value).getTime()) return;
    element.setAttribute("datetime", value);
    try {
      element.textContent = new Intl.DateTimeFormat(undefined, {
        weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23", timeZone: element.getAttribute("data-zone") || "UTC", timeZoneName: "short"
      }).format(new Date(value));
    } catch (error) {
      element.textContent = value;
    }
  }

  // --- Rows of recipients -------------------------------------------------------------------

  var CELLS = {
    outcome: function (row) {
      return [make("span", "badge badge--outcome-" + row.outcome, row.outcome_label)];
    },
    summary: function (row) {
      return [row.summary ? document.createTextNode(row.summary) : dash()];
    },
    attempts: function (row) {
      return [document.createTextNode(String(row.attempts))];
    },
    next_call: function (row) {
      return [row.next_call_at ? time(row.next_call_at, row.next_call, row.next_call_utc) : dash()];
    },
    disposition: function (row) {
      return [row.disposition ? document.createTextNode(row.disposition) : dash()];
    },
    updated: function (row) {
      return [row.updated_at ? time(row.updated_at, row.updated) : dash()];
    },
    conversation: function (row) {
      if (!row.conversation_id) return [dash()];
      var code = make("code", "small", row.conversation_short);
      code.title = row.conversation_id;
      var button = make("button", "copy-id", "Copy");
      button.type = "button";
      button.setAttribute("data-copy-text", row.conversation_id);
      button.setAttribute("aria-label", "Copy conversation id " + row.conversation_id);
      return [code, document.createTextNode(" "), button];
    }
  };
  var CELL_CLASSES = {
    outcome: "", summary: "summary-cell", attempts: "num", next_call: "nowrap", disposition: "",
    updated: "nowrap", conversation: "nowrap"
  };
  var CELL_FIELDS = {
    outcome: ["outcome", "outcome_label"], summary: ["summary"], attempts: ["attempts"],
    next_call: ["next_call_at", "next_call"], disposition: ["disposition"], updated: ["updated_at", "updated"],
    conversation: ["conversation_id"]
  };

  function buildRow(row, names) {
    var tr = make("tr");
    tr.setAttribute("data-recipient", row.id);
    tr.appendChild(make("td", "num", String(row.line)));
    var phone = make("td", "nowrap");
    var link = make("a");
    link.href = row.url;
    link.title = "See the call to " + row.phone_number;
    link.appendChild(make("code", "", row.phone_number));
    phone.appendChild(link);
    tr.appendChild(phone);
    names.forEach(function (name) {
      var cell = make("td", CELL_CLASSES[name]);
      cell.setAttribute("data-cell", name);
      tr.appendChild(cell);
    });
    return tr;
  }

  function fillRow(tr, row) {
    Object.keys(CELLS).forEach(function (name) {
      var cell = tr.querySelector('[data-cell="' + name + '"]');
      if (!cell) return;
      // Only a cell whose content changed is rebuilt: a focused copy button stays where it is.
      var signature = JSON.stringify(CELL_FIELDS[name].map(function (field) { return row[field]; }));
      if (cell.getAttribute("data-shown") === signature) return;
      cell.setAttribute("data-shown", signature);
      cell.replaceChildren.apply(cell, CELLS[name](row));
    });
  }

  function renderRows(rows) {
    var table = document.querySelector("[data-recipient-rows]");
    var body = table && table.tBodies[0];
    if (!body) return;
    // The table's own columns (a campaign without a calling policy has no next call).
    var names = table.getAttribute("data-cells").split(" ").filter(function (name) { return CELLS[name]; });
    var present = {};
    Array.prototype.forEach.call(body.rows, function (tr) {
      present[tr.getAttribute("data-recipient")] = tr;
    });
    var previous = null;
    rows.forEach(function (row) {
      var tr = present[row.id] || buildRow(row, names);
      delete present[row.id];
      fillRow(tr, row);
      var expected = previous ? previous.nextElementSibling : body.firstElementChild;
      if (expected !== tr) body.insertBefore(tr, expected);
      previous = tr;
    });
    // People who left this filter's page (a status filter) leave the table too.
    Object.keys(present).forEach(function (id) {
      present[id].remove();
    });
  }

  // --- Polling ------------------------------------------------------------------------------

  function render(data) {
    renderProgress(data);
    if (data.recipients) renderRows(data.recipients.rows);
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
