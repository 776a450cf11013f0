// The home's fleet figures, re-rendered from each status snapshot (see status.js).
(function () {
  "use strict";
  var root = document.getElementById("system-status");
  if (!root) { return; }
  function byId(id) { return document.getElementById(id); }
  function setText(id, value) { var el = byId(id); if (el && value !== undefined && value !== null) { el.textContent = value; } }
  function setCounts(listId, attr, rows, key) {
    var list = byId(listId);
    if (!list || !rows) { return; }
    rows.forEach(function (row) {
      var li = list.querySelector("[" + attr + '="' + row[key] + '"] .n');
      if (li) { li.textContent = row.n; }
    });
  }
  function render(s) {
    if (s.meters) {
      setText("meters-total", s.meters.total);
      setCounts("health-list", "data-health", s.meters.health, "health");
      setCounts("status-list", "data-status", s.meters.by_status, "status");
      var bar = byId("health-bar");
      bar.textContent = "";
      s.meters.health.forEach(function (h) {
        if (!h.n) { return; }
        var part = document.createElement("span"); part.className = "h-" + h.health; part.style.flex = h.n; bar.appendChild(part);
      });
    }
    if (s.today) {
      setText("today-ok", s.today.ok);
      setText("today-failed", s.today.failed);
      setText("today-rate", s.today.success_rate === null ? "–" : s.today.success_rate + " %");
    }
    setText("fleet-as-of", s.fleet_as_of);
    setText("reads-per-minute", s.reads_per_minute);
    setText("unreachable", s.unreachable);
    setText("not-read", s.not_read_for_days);
    setText("runs-running", s.runs_running);
    if (s.runs) {
      var runs = byId("run-list"); runs.textContent = "";
      s.runs.forEach(function (run) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = runs.dataset.runUrl.replace("/0/", "/" + run.id + "/"); a.textContent = run.name; li.appendChild(a);
        var m = document.createElement("span"); m.className = "muted"; m.textContent = " " + run.done + "/" + run.total; li.appendChild(m);
        runs.appendChild(li);
      });
      if (!s.runs.length) { var none = document.createElement("li"); none.className = "muted"; none.textContent = "none"; runs.appendChild(none); }
    }
    if (s.alarms) {
      byId("alarms-card").hidden = false;
      setText("alarms-total", s.alarms.total);
      setCounts("alarm-list", "data-severity", s.alarms.by_severity, "severity");
    }
    if (s.outages !== undefined && s.outages !== null) { byId("outages-line").hidden = false; setText("outages", s.outages); }
    if (s.meters || s.today) { setText("status-updated", window.amiWhen(new Date(), true)); }
  }
  document.addEventListener("ami:status", function (event) { render(event.detail); });
})();
