// The fleet map: cells or meters from /map/data/ (clustered on the server), per view change.
(function () {
  "use strict";
  var box = document.getElementById("meter-map");
  if (!box || !window.L) { return; }
  var COLOURS = {ok: "#1a7f37", stale: "#d98c00", unreachable: "#c62828", alarm: "#8e24aa", disconnected: "#555f6b"};
  var SEVERITY = ["disconnected", "alarm", "unreachable", "stale", "ok"];
  var map = L.map(box, {preferCanvas: true, worldCopyJump: true}).setView([20, 0], 2);
  L.tileLayer(box.dataset.tiles, {maxZoom: 19, attribution: "&copy; map tiles"}).addTo(map);
  var layer = L.layerGroup().addTo(map);
  var renderer = L.canvas({padding: 0.3});
  var total = document.getElementById("map-total");
  var pending = null, timer = null, seq = 0;
  window.amiMap = {map: map, last: null, loads: 0};

  function query(extra) {
    var q = box.dataset.query;
    return box.dataset.url + "?" + (q ? q + "&" : "") + extra;
  }
  // The worst class holding at least a tenth of a cell colours it; else the commonest.
  function cellColour(counts, n) {
    for (var i = 0; i < SEVERITY.length - 2; i++) {
      var h = SEVERITY[i];
      if ((counts[h] || 0) * 10 >= n) { return COLOURS[h]; }
    }
    return (counts.stale || 0) > (counts.ok || 0) ? COLOURS.stale : COLOURS.ok;
  }
  function cellIcon(cell) {
    var size = Math.round(26 + 8 * Math.log10(cell.n));
    var label = cell.n >= 10000 ? Math.round(cell.n / 1000) + "k" : String(cell.n);
    return L.divIcon({
      className: "map-cell",
      html: '<span style="background:' + cellColour(cell.counts, cell.n) + ";width:" + size + "px;height:" + size + "px;line-height:" + size + 'px">' + label + "</span>",
      iconSize: [size, size]
    });
  }
  function cellTitle(cell) {
    return cell.n + " meters: " + Object.keys(cell.counts).map(function (h) { return cell.counts[h] + " " + h; }).join(", ");
  }
  function render(data) {
    layer.clearLayers();
    data.cells.forEach(function (cell) {
      var m = L.marker([cell.lat, cell.lon], {icon: cellIcon(cell), title: cellTitle(cell), keyboard: false});
      m.on("click", function () { map.setView([cell.lat, cell.lon], Math.min(map.getZoom() + 2, 19)); });
      layer.addLayer(m);
    });
    data.points.forEach(function (p) {
      var m = L.circleMarker([p.lat, p.lon], {renderer: renderer, radius: 6, weight: 1, color: "#fff", fillColor: COLOURS[p.health] || "#999", fillOpacity: 0.95});
      var url = data.detail_url.replace("SERIAL", encodeURIComponent(p.serial));
      m.bindPopup('<a href="' + url + '">' + p.serial.replace(/[<>&"]/g, "") + "</a><br>" + p.health + " · " + p.status);
      layer.addLayer(m);
    });
    data.transformers.forEach(function (t) {
      layer.addLayer(L.marker([t.lat, t.lon], {icon: L.divIcon({className: "map-asset tr", iconSize: [12, 12]}), title: "Transformer " + t.code + " " + t.name}));
    });
    data.concentrators.forEach(function (c) {
      layer.addLayer(L.marker([c.lat, c.lon], {icon: L.divIcon({className: "map-asset dc", iconSize: [12, 12]}), title: "Concentrator " + c.serial}));
    });
    total.textContent = "(" + data.total + " meters in view" + (data.mode === "cells" ? ", clustered" : "") +
      (data.as_of ? ", as of " + new Date(data.as_of).toLocaleTimeString() : "") + ")";
  }
  function load() {
    map.invalidateSize();  // the box may have been laid out after the map was made
    var b = map.getBounds(), mine = ++seq;
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(5); }).join(",");
    if (pending) { pending.abort(); }
    pending = new AbortController();
    fetch(query("bbox=" + bbox + "&zoom=" + map.getZoom()), {credentials: "same-origin", signal: pending.signal})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (mine !== seq) { return; }
        render(data);
        window.amiMap.last = data; window.amiMap.loads += 1;
        box.dataset.loaded = String(window.amiMap.loads);
      })
      .catch(function () {});
  }
  map.on("moveend", function () { clearTimeout(timer); timer = setTimeout(load, 150); });
  fetch(query("extent=1"), {credentials: "same-origin"})
    .then(function (r) { return r.json(); })
    .then(function (data) {
      var e = data.extent;
      if (e) { map.fitBounds([[e[1], e[0]], [e[3], e[2]]], {padding: [20, 20], maxZoom: 17}); }
      load();
    })
    .catch(load);
})();
