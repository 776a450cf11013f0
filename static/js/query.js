// Data query page: the result graph (uPlot, vendored), and the progress of a queued export.
(function () {
  "use strict";
  var ESTIMATED = 1, MISSING = 4;
  var COLORS = ["#0b6bcb", "#1a7f37", "#8e44ad", "#b35900", "#00838f", "#c62828", "#5d4037", "#455a64"];

  function columnsOf(channels) {
    var set = {};
    channels.forEach(function (ch) { ch.timestamps.forEach(function (t) { set[Date.parse(t) / 1000] = true; }); });
    var xs = Object.keys(set).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var columns = [xs];
    channels.forEach(function (ch) {
      var main = new Array(xs.length).fill(null), flagged = new Array(xs.length).fill(null);
      ch.timestamps.forEach(function (t, k) {
        var i = index[Date.parse(t) / 1000];
        var v = ch.values[k] === null ? null : Number(ch.values[k]);
        main[i] = v;
        if ((ch.quality[k] & (ESTIMATED | MISSING)) || v === null) { flagged[i] = v === null ? 0 : v; }
      });
      columns.push(main, flagged);
    });
    return columns;
  }

  // One panel per unit and kind (a cumulative register in MWh would flatten 15-minute
  // intervals in Wh on a shared axis); the panels share the time axis and its range.
  function panelsOf(channels) {
    var panels = [], byKey = {};
    channels.forEach(function (ch, n) {
      var key = ch.panel || ch.unit || "value";
      if (!byKey[key]) { byKey[key] = { key: key, label: ch.panel_label || ch.unit, channels: [], colours: [] }; panels.push(byKey[key]); }
      byKey[key].channels.push(ch); byKey[key].colours.push(COLORS[n % COLORS.length]);
    });
    return panels;
  }

  // Axis numbers with thousands separators (8,712,345 rather than 8712345).
  function grouped(u, values) { return values.map(function (v) { return v === null ? "" : v.toLocaleString("en"); }); }

  var el = document.getElementById("query-graph");
  if (el && window.uPlot) {
    fetch(el.dataset.url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        if (!data.channels.length || !data.channels.some(function (c) { return c.values.length; })) {
          el.textContent = "Nothing to draw."; el.classList.add("muted"); return;
        }
        var range = [Date.parse(data.start) / 1000, Date.parse(data.end) / 1000];
        var height = function () { return window.innerWidth < 640 ? 200 : 260; };
        var plots = [];
        panelsOf(data.channels).forEach(function (panel) {
          var box = document.createElement("div"), title = document.createElement("h3");
          box.className = "graph-panel"; box.dataset.panel = panel.key;
          title.textContent = panel.label; box.appendChild(title); el.appendChild(box);
          var series = [{}];
          panel.channels.forEach(function (ch, i) {
            series.push({ label: ch.name + " (" + ch.unit + ")", stroke: panel.colours[i], width: 1.5, scale: "y", spanGaps: false });
            series.push({ label: "flagged", stroke: "#8a949e", width: 0, scale: "y", paths: function () { return null; }, points: { show: true, size: 6, stroke: "#b35900", fill: "#fdebd9" } });
          });
          var opts = {
            width: el.clientWidth || 600, height: height(), tzDate: window.amiTzDate,
            scales: { x: { time: true, range: function () { return range; } } }, series: series,
            axes: [{}, { scale: "y", label: panel.label, size: 90, values: grouped }]
          };
          plots.push(new uPlot(opts, columnsOf(panel.channels), box));
        });
        el.dataset.ready = "1"; el.dataset.panels = String(plots.length);
        window.addEventListener("resize", function () { plots.forEach(function (p) { p.setSize({ width: el.clientWidth, height: height() }); }); });
      })
      .catch(function (err) { el.textContent = "Could not draw the graph: " + err.message; });
  }

  // A queued export is polled until it is ready or failed; a finished one is not polled.
  var job = document.getElementById("export-job");
  if (job) {
    var state = document.getElementById("export-status");
    var FINISHED = ["done", "failed"];
    var delay = 1000;
    var poll = function () {
      fetch(job.dataset.status, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (s) {
          state.dataset.status = s.status;
          state.textContent = s.status_label || s.status;
          document.getElementById("export-rows").textContent = s.rows_done;
          document.getElementById("export-bar").value = s.percent;
          document.getElementById("export-error").textContent = s.error || "";
          if (s.status === "done") { document.getElementById("export-download").hidden = false; }
          if (FINISHED.indexOf(s.status) >= 0) { job.dataset.watch = "finished"; return; }
          delay = 1000; window.setTimeout(poll, delay);
        })
        .catch(function () { delay = Math.min(delay * 2, 30000); window.setTimeout(poll, delay); });
    };
    if (FINISHED.indexOf(state.dataset.status) >= 0) { job.dataset.watch = "finished"; } else { job.dataset.watch = "live"; poll(); }
  }
})();
