// Live alarms over ws/alarms/: new alarms appear at the top, counts and states update, and
// the outage table is fetched again when a power-failure alarm changes. Reconnects with
// backoff. Only what the server sends (already scoped to this user) is shown.
(function () {
  "use strict";
  var table = document.getElementById("alarm-table");
  if (!table) { return; }
  var live = document.getElementById("alarm-live");
  var body = table.tBodies ? table.tBodies[0] : null;
  var outages = document.getElementById("outages");
  var states = {};
  var delay = 1000;
  var outageTimer = null;
  var LABELS = {raised: "Raised", acknowledged: "Acknowledged", cleared: "Cleared"};

  if (body) {
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-alarm]"), function (row) {
      states[row.dataset.alarm] = row.dataset.state;
    });
  }

  function bump(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = Math.max(0, parseInt(el.textContent || "0", 10) + value); }
  }

  function count(oldState, newState) {
    var wasOpen = oldState === "raised" || oldState === "acknowledged";
    var isOpen = newState === "raised" || newState === "acknowledged";
    bump("open-count", (isOpen ? 1 : 0) - (wasOpen ? 1 : 0));
    bump("raised-count", (newState === "raised" ? 1 : 0) - (oldState === "raised" ? 1 : 0));
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    return td;
  }

  function render(alarm) {
    if (!body) { return; }
    var row = body.querySelector('tr[data-alarm="' + alarm.id + '"]');
    if (!row) {
      var empty = body.querySelector("tr.empty");
      if (empty) { empty.remove(); }
      row = document.createElement("tr");
      row.dataset.alarm = alarm.id;
      var kind = alarm.kind_label + (alarm.last_event ? " · last: " + alarm.last_event : "");
      [window.amiWhen(alarm.last_event_at, true), alarm.meter || alarm.subject, kind,
       alarm.severity_label].forEach(function (t) { row.appendChild(cell(t)); });
      row.appendChild(cell(alarm.count, "count"));
      row.appendChild(cell(LABELS[alarm.state] || alarm.state, "state"));
      row.appendChild(cell(""));
      row.className = "new";
      body.insertBefore(row, body.firstChild);
    } else {
      row.querySelector(".count").textContent = alarm.count;
      row.querySelector(".state").textContent = LABELS[alarm.state] || alarm.state;
      row.cells[0].textContent = window.amiWhen(alarm.last_event_at, true);
    }
    row.dataset.state = alarm.state;
  }

  function refreshOutages() {
    if (!outages) { return; }
    clearTimeout(outageTimer);
    outageTimer = setTimeout(function () {
      fetch(outages.dataset.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          document.getElementById("meters-off").textContent = data.meters_off;
          var tbody = outages.querySelector("tbody");
          tbody.textContent = "";
          // The alarm list shows the largest outages only (data-rows), the outage page all.
          var limit = parseInt(outages.dataset.rows || "0", 10);
          [["Transformer", data.transformers, "transformer"],
           ["Feeder", data.feeders, "feeder"]].forEach(function (level) {
            var nodes = limit ? level[1].slice(0, limit) : level[1];
            nodes.forEach(function (n) {
              var tr = document.createElement("tr");
              tr.appendChild(cell(level[0]));
              tr.appendChild(cell(n.code + " " + n.name));
              tr.appendChild(cell(n.off + " of " + n.total));
              tr.appendChild(cell(window.amiWhen(n.since)));
              tbody.appendChild(tr);
            });
            var more = level[1].length - nodes.length;
            if (more > 0) {
              var link = document.createElement("a");
              link.href = outages.dataset.all;
              link.textContent = more + " more " + level[2] + (more === 1 ? "" : "s") +
                " with meters off";
              var td = document.createElement("td");
              td.colSpan = 4;
              td.appendChild(link);
              var row = document.createElement("tr");
              row.className = "more";
              row.appendChild(td);
              tbody.appendChild(row);
            }
          });
          if (!tbody.children.length) {
            var tr = cell("No outages.", "muted");
            tr.colSpan = 4;
            var row = document.createElement("tr");
            row.appendChild(tr);
            tbody.appendChild(row);
          }
        });
    }, 500);
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + table.dataset.ws);
    ws.onopen = function () { live.textContent = "live"; live.className = "badge ok"; delay = 1000; };
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type !== "alarm") { return; }
      var alarm = data.alarm;
      count(states[alarm.id], alarm.state);
      states[alarm.id] = alarm.state;
      render(alarm);
      if (alarm.kind === "power_failure") { refreshOutages(); }
      document.dispatchEvent(new CustomEvent("ami:alarm", {detail: alarm}));
    };
    ws.onclose = function () {
      live.textContent = "reconnecting…"; live.className = "badge warn";
      setTimeout(connect, delay); delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
