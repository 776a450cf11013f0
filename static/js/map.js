// The fleet map: cells or meters from /map/data/ (clustered on the server), per view change,
// drawn over the grid's topology (substations, feeder lines, transformers, service drops),
// so the map says something useful even when no map tiles can be loaded (offline sites).
(function () {
  "use strict";
  var box = document.getElementById("meter-map");
  if (!box || !window.L) { return; }
  var COLOURS = {ok: "#1a7f37", stale: "#d98c00", unreachable: "#c62828", alarm: "#8e24aa", disconnected: "#555f6b"};
  var FEEDERS = ["#0b6bcb", "#00838f", "#6a1b9a", "#ad1457", "#2e7d32", "#ef6c00"];
  var SEVERITY = ["disconnected", "alarm", "unreachable", "stale", "ok"];
  var map = L.map(box, {preferCanvas: true, worldCopyJump: true}).setView([20, 0], 2);
  // Loss % per placed feeder and transformer (the reports' panel, a JSON block): a ring in
  // the level's colour, its tooltip the figure, a click opens the node's energy balance.
  var LOSS = {ok: "#1a7f37", warn: "#d98c00", bad: "#c62828", unknown: "#555f6b"};
  var lossData = document.getElementById("map-losses");
  if (lossData) {
    var losses = L.layerGroup().addTo(map), rings = L.svg();
    JSON.parse(lossData.textContent).forEach(function (n) {
      if (n.lat === null || n.lng === null) { return; }
      var text = n.code + ": loss " + (n.loss_percent === null ? "unknown (no complete day)" : n.loss_percent + " %");
      L.circleMarker([n.lat, n.lng], {renderer: rings, radius: 13, color: LOSS[n.level], weight: 4, fill: false, className: "loss-ring loss-" + n.level})
        .bindTooltip(text).on("click", function () { window.location.href = n.url; }).addTo(losses);
    });
  }
  var lines = L.layerGroup().addTo(map);
  var layer = L.layerGroup().addTo(map);
  var renderer = L.canvas({padding: 0.3});
  var total = document.getElementById("map-total");
  var note = document.getElementById("map-tiles-note");
  var pending = null, timer = null, seq = 0;
  window.amiMap = {map: map, last: null, loads: 0, tiles: "probing"};

  // Tiles: one probe image first; only if it loads is the tile layer added. Offline (or with
  // AMI_MAP_TILES empty) the map keeps its plain background and says why.
  function noTiles(why) {
    window.amiMap.tiles = "unavailable";
    box.classList.add("no-tiles");
    note.textContent = why;
    note.hidden = false;
  }
  var tiles = box.dataset.tiles;
  if (!tiles) {
    noTiles("No map tiles are configured (AMI_MAP_TILES): the grid is drawn on a plain background.");
  } else {
    var probe = new Image();
    probe.onload = function () {
      window.amiMap.tiles = "loaded";
      L.tileLayer(tiles, {maxZoom: 19, attribution: "&copy; map tiles"}).addTo(map).bringToBack();
    };
    probe.onerror = function () {
      noTiles("Map tiles are unavailable (no internet, or the tile server cannot be reached): the grid is drawn on a plain background.");
    };
    probe.src = tiles.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0").replace("{y}", "0").replace("{r}", "");
  }

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
    var span = document.createElement("span");
    span.textContent = cell.n >= 10000 ? Math.round(cell.n / 1000) + "k" : String(cell.n);
    span.style.background = cellColour(cell.counts, cell.n);
    span.style.width = span.style.height = span.style.lineHeight = size + "px";
    return L.divIcon({className: "map-cell", html: span, iconSize: [size, size]});
  }
  function assetIcon(kind) {
    var shape = document.createElement("span");
    return L.divIcon({className: "map-asset " + kind, html: shape, iconSize: [14, 14]});
  }
  function cellTitle(cell) {
    return cell.n + " meters: " + Object.keys(cell.counts).map(function (h) { return cell.counts[h] + " " + h; }).join(", ");
  }
  var feederColours = {};
  function feederColour(code) {
    if (!(code in feederColours)) { feederColours[code] = FEEDERS[Object.keys(feederColours).length % FEEDERS.length]; }
    return feederColours[code];
  }
  function render(data) {
    layer.clearLayers(); lines.clearLayers();
    (data.transformers || []).forEach(function (t) {
      if (t.substation) {
        lines.addLayer(L.polyline([t.substation, [t.lat, t.lon]], {renderer: renderer, color: feederColour(t.feeder), weight: 3, opacity: 0.8}).bindTooltip("Feeder " + t.feeder));
      }
    });
    data.points.forEach(function (p) {
      if (p.transformer) { lines.addLayer(L.polyline([p.transformer, [p.lat, p.lon]], {renderer: renderer, color: "#7a8794", weight: 1, opacity: 0.7})); }
    });
    data.cells.forEach(function (cell) {
      var m = L.marker([cell.lat, cell.lon], {icon: cellIcon(cell), title: cellTitle(cell), keyboard: false});
      m.on("click", function () { map.setView([cell.lat, cell.lon], Math.min(map.getZoom() + 2, 19)); });
      layer.addLayer(m);
    });
    data.points.forEach(function (p) {
      var m = L.circleMarker([p.lat, p.lon], {renderer: renderer, radius: 6, weight: 1, color: "#fff", fillColor: COLOURS[p.health] || "#999", fillOpacity: 0.95});
      var url = data.detail_url.replace("SERIAL", encodeURIComponent(p.serial));
      var popup = document.createElement("div"), a = document.createElement("a");
      a.href = url; a.textContent = p.serial; popup.appendChild(a);
      popup.appendChild(document.createElement("br"));
      popup.appendChild(document.createTextNode(p.health + " · " + p.status));
      m.bindPopup(popup);
      layer.addLayer(m);
    });
    (data.substations || []).forEach(function (s) {
      layer.addLayer(L.marker([s.lat, s.lon], {icon: assetIcon("sub"), title: "Substation " + s.code + " " + s.name}));
    });
    data.transformers.forEach(function (t) {
      layer.addLayer(L.marker([t.lat, t.lon], {icon: assetIcon("tr"), title: "Transformer " + t.code + " " + t.name}));
    });
    data.concentrators.forEach(function (c) {
      layer.addLayer(L.marker([c.lat, c.lon], {icon: assetIcon("dc"), title: "Concentrator " + c.serial}));
    });
    total.textContent = "(" + data.total + " meters in view" + (data.mode === "cells" ? ", counted in clusters" : "") +
      (data.as_of ? ", as of " + window.amiWhen(data.as_of, true) : "") + ")";
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
