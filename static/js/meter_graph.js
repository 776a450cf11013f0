// Meter page graphs (uPlot, vendored): the load profile with zoom, and the register history.
// Data: /api/meters/<id>/series/. Estimated values are drawn dashed with markers, missing or
// incomplete intervals as grey markers on the baseline (or on the incomplete bucket).
(function () {
  "use strict";
  var ESTIMATED = 1, MISSING = 4;
  var DAY = 86400000;
  var COLORS = ["#0b6bcb", "#1a7f37", "#8e44ad", "#b35900", "#00838f", "#c62828", "#5d4037", "#455a64"];

  function shown(ms) { return window.amiWhen(ms); }  // the utility's zone (ami.js)

  // Merge the channels' own timestamps into one x axis (uPlot wants aligned columns).
  function align(channels, raw) {
    var xsSet = {};
    channels.forEach(function (ch) { ch.timestamps.forEach(function (t) { xsSet[Date.parse(t) / 1000] = true; }); });
    var xs = Object.keys(xsSet).map(Number).sort(function (a, b) { return a - b; });
    if (raw && xs.length > 2) {  // break lines where whole intervals are absent
      var step = Infinity, i;
      for (i = 1; i < xs.length; i++) { step = Math.min(step, xs[i] - xs[i - 1]); }
      var filled = [xs[0]];
      for (i = 1; i < xs.length; i++) {
        if (xs[i] - xs[i - 1] > step * 1.5) { filled.push(xs[i - 1] + step); }
        filled.push(xs[i]);
      }
      xs = filled;
    }
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var columns = [xs];
    channels.forEach(function (ch) {
      var main = new Array(xs.length).fill(null), flags = new Array(xs.length).fill(0);
      var est = new Array(xs.length).fill(null), miss = new Array(xs.length).fill(null);
      ch.timestamps.forEach(function (t, k) {
        var i = index[Date.parse(t) / 1000];
        main[i] = ch.values[k] === null ? null : Number(ch.values[k]);
        flags[i] = ch.quality[k] | (ch.values[k] === null ? MISSING : 0);
      });
      for (var i = 0; i < xs.length; i++) {
        if (flags[i] & ESTIMATED) {  // dashed from the neighbour before to the one after
          est[i] = main[i];
          if (i > 0) { est[i - 1] = main[i - 1]; }
          if (i + 1 < xs.length) { est[i + 1] = main[i + 1]; }
        }
        if (flags[i] & MISSING) { miss[i] = main[i] === null ? 0 : main[i]; }
      }
      columns.push(main, est, miss);
    });
    return columns;
  }

  function seriesFor(channels) {
    var series = [{}];
    channels.forEach(function (ch, n) {
      var color = COLORS[n % COLORS.length];
      var scale = ch.unit || "value";
      // A head-end derived series (polled registers, no meter profile) says so in the legend.
      var label = ch.name + (ch.unit ? " (" + ch.unit + ")" : "") + (ch.head_end_derived ? " [head-end]" : "");
      series.push({ label: label, stroke: color, width: 1.5, scale: scale, spanGaps: false, points: { show: false } });
      series.push({ label: "estimated", stroke: "#b35900", dash: [5, 4], width: 1.5, scale: scale, spanGaps: false, points: { show: true, size: 5, stroke: "#b35900", fill: "#fdebd9" } });
      series.push({ label: "missing", stroke: "#8a949e", width: 0, scale: scale, paths: function () { return null; }, points: { show: true, size: 7, stroke: "#8a949e", fill: "#d9dee4" } });
    });
    return series;
  }

  function axesFor(channels) {
    var units = [];
    channels.forEach(function (ch) { var u = ch.unit || "value"; if (units.indexOf(u) < 0) { units.push(u); } });
    var axes = [{}];
    units.slice(0, 2).forEach(function (u, i) { axes.push({ scale: u, label: u, side: i === 0 ? 3 : 1, grid: { show: i === 0 }, size: 60 }); });
    return axes;
  }

  function fetchSeries(url, params) {
    var query = Object.keys(params).map(function (k) { return k + "=" + encodeURIComponent(params[k]); }).join("&");
    return fetch(url + "?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }

  // ---------------------------------------------------------------- load profile
  var el = document.getElementById("profile-graph");
  if (el) {
    var end = el.dataset.end ? Date.parse(el.dataset.end) : Date.now();
    var state = { start: end - 7 * DAY, end: end };
    var plot = null;
    var rangeText = document.getElementById("graph-range");
    var resText = document.getElementById("graph-resolution");
    var message = document.getElementById("graph-message");
    var choice = document.getElementById("graph-resolution-choice");

    var chosen = function () {
      return Array.prototype.map.call(document.querySelectorAll("input[name=graph-channel]:checked"), function (c) { return c.value; });
    };
    var height = function () { return window.innerWidth < 640 ? 240 : 340; };

    var load = function (start, end) {
      state.start = Math.round(start); state.end = Math.round(end);
      el.dataset.start = new Date(state.start).toISOString();
      el.dataset.stop = new Date(state.end).toISOString();
      rangeText.textContent = shown(state.start) + " – " + shown(state.end);
      var channels = chosen();
      if (!channels.length) { message.textContent = "Choose a channel."; return; }
      message.textContent = "Loading…";
      el.setAttribute("aria-busy", "true");
      fetchSeries(el.dataset.url, {
        channels: channels.join(","), start: new Date(state.start).toISOString(),
        end: new Date(state.end).toISOString(), resolution: choice.value
      }).then(function (data) {
        resText.textContent = data.resolution;
        var points = data.channels.reduce(function (n, ch) { return n + ch.values.length; }, 0);
        message.textContent = points ? points + " values" : "No values stored in this range.";
        var columns = align(data.channels, data.resolution === "raw");
        var opts = {
          width: el.clientWidth || 600, height: height(), tzDate: window.amiTzDate,
          scales: { x: { time: true, range: [state.start / 1000, state.end / 1000] } },
          series: seriesFor(data.channels), axes: axesFor(data.channels),
          cursor: { drag: { x: true, y: false, setScale: false } },
          hooks: { setSelect: [function (u) {
            if (u.select.width < 5) { return; }
            var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            load(lo * 1000, hi * 1000);
          }] }
        };
        if (plot) { plot.destroy(); }
        plot = new uPlot(opts, columns, el);
        el.dataset.resolution = data.resolution;
        el.removeAttribute("aria-busy");
      }).catch(function (err) { message.textContent = "Could not load: " + err.message; el.removeAttribute("aria-busy"); });
    };

    document.querySelectorAll("#graph-controls [data-span]").forEach(function (b) {
      b.addEventListener("click", function () { load(state.end - Number(b.dataset.span) * DAY, state.end); });
    });
    var span = function () { return state.end - state.start; };
    document.getElementById("graph-zoom-in").addEventListener("click", function () { var c = (state.start + state.end) / 2; load(c - span() / 4, c + span() / 4); });
    document.getElementById("graph-zoom-out").addEventListener("click", function () { var c = (state.start + state.end) / 2; load(c - span(), c + span()); });
    document.getElementById("graph-prev").addEventListener("click", function () { load(state.start - span(), state.start); });
    document.getElementById("graph-next").addEventListener("click", function () { load(state.end, state.end + span()); });
    choice.addEventListener("change", function () { load(state.start, state.end); });
    document.querySelectorAll("input[name=graph-channel]").forEach(function (c) { c.addEventListener("change", function () { load(state.start, state.end); }); });
    window.addEventListener("resize", function () { if (plot) { plot.setSize({ width: el.clientWidth, height: height() }); } });
    load(state.start, state.end);
  }

  // ---------------------------------------------------------------- register history
  var small = document.getElementById("register-graph");
  if (small) {
    var now = Date.now();
    fetchSeries(small.dataset.url, { channels: small.dataset.channel, start: new Date(now - 366 * DAY).toISOString(), end: new Date(now).toISOString(), resolution: "day" })
      .then(function (data) {
        var ch = data.channels[0];
        if (!ch || !ch.values.length) { small.textContent = "No reads in the last year."; small.classList.add("muted", "empty"); return; }
        var xs = ch.timestamps.map(function (t) { return Date.parse(t) / 1000; });
        var ys = ch.values.map(function (v) { return v === null ? null : Number(v); });
        // A few reads (one or two) get a readable span around them, not uPlot's years.
        var first = xs[0], last = xs[xs.length - 1];
        var pad = Math.max(86400, (14 * 86400 - (last - first)) / 2);
        var xRange = [first - pad, last + pad];
        var u = new uPlot({ width: small.clientWidth || 400, height: 160, tzDate: window.amiTzDate,
          scales: { x: { time: true, range: xRange } },
          series: [{}, { label: ch.name, stroke: COLORS[0], width: 1.5, points: { show: true, size: 4 } }],
          axes: [{}, { size: 70 }], legend: { show: false },
          hooks: { setScale: [function (self, key) {
            if (key === "x") { small.dataset.xMin = String(self.scales.x.min); small.dataset.xMax = String(self.scales.x.max); }
          }] } }, [xs, ys], small);
        window.addEventListener("resize", function () { u.setSize({ width: small.clientWidth, height: 160 }); });
      }).catch(function () { small.textContent = ""; });
  }
})();
