// Lazy branches: a node marked data-lazy fetches its children (with roll-ups) when opened.
(function () {
  "use strict";
  var tree = document.getElementById("grid-tree");
  if (!tree) { return; }
  var ORDER = ["ok", "stale", "unreachable", "alarm", "disconnected"];
  // Loss % per feeder and transformer (the reports' panel, a JSON block): a badge linking
  // to the node's energy balance, on the nodes drawn now and on those loaded later.
  var lossData = document.getElementById("grid-losses"), losses = {};
  if (lossData) { JSON.parse(lossData.textContent).forEach(function (n) { losses[n.id] = n; }); }
  function markLosses(root) {
    root.querySelectorAll("li.grid-node").forEach(function (li) {
      var n = losses[li.dataset.id], summary = li.querySelector(":scope > details > summary");
      if (!n || !summary || summary.querySelector(".loss-badge")) { return; }
      var a = el("a", "loss-badge loss-" + n.level, n.loss_percent === null ? "loss ?" : "loss " + n.loss_percent + " %");
      a.href = n.url; a.title = "Energy balance of this node";
      summary.append(" "); summary.appendChild(a);
    });
  }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) { e.className = cls; } if (text !== undefined) { e.textContent = text; } return e; }
  function nodeItem(n) {
    var li = el("li", "grid-node"); li.dataset.id = n.id; li.dataset.kind = n.kind;
    var details = el("details"), summary = el("summary");
    summary.appendChild(el("span", "badge", n.kind_label)); summary.append(" ");
    summary.appendChild(el("strong", "", n.code)); summary.append(" " + n.name + " ");
    var roll = el("span", "rollup"), m = n.meters;
    roll.appendChild(el("span", "count", m.total + (m.total === 1 ? " meter" : " meters")));
    if (m.total) {
      var bar = el("span", "bar");
      ORDER.forEach(function (h) { if (m[h]) { var s = el("span", "h-" + h); s.style.flex = m[h]; bar.appendChild(s); } });
      roll.appendChild(bar);
      roll.appendChild(el("span", "muted", m.ok + " read OK · " + m.unreachable + " unreachable"));
    }
    summary.appendChild(roll);
    var extra = [n.rated_kva ? n.rated_kva + " kVA" : "", n.voltage_kv ? n.voltage_kv + " kV" : "", n.address || ""].filter(Boolean).join(" · ");
    if (extra) { summary.appendChild(el("span", "muted node-extra", extra)); }
    var list = el("a", "node-link", "meters"); list.href = tree.dataset.listUrl + "?node=" + n.id; summary.appendChild(list);
    summary.append(" ");
    var map = el("a", "node-link", "map"); map.href = tree.dataset.mapUrl + "?node=" + n.id; summary.appendChild(map);
    details.appendChild(summary);
    if (n.has_children || n.kind === "transformer") { details.dataset.lazy = "1"; details.appendChild(el("ul", "lazy-children")); }
    else { li.classList.add("leaf"); }
    li.appendChild(details);
    return li;
  }
  markLosses(tree);
  tree.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!details.open || details.dataset.lazy !== "1" || details.dataset.loaded) { return; }
    details.dataset.loaded = "loading";
    var id = details.parentNode.dataset.id, ul = details.querySelector(":scope > ul.lazy-children");
    ul.appendChild(el("li", "muted", "loading…"));
    fetch(tree.dataset.childrenUrl.replace("/0/", "/" + id + "/"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        ul.textContent = "";
        data.nodes.forEach(function (n) { ul.appendChild(nodeItem(n)); });
        if (!data.nodes.length) { ul.appendChild(el("li", "muted", "nothing below")); }
        if (data.more) { ul.appendChild(el("li", "muted", "… more: use the meter list filtered by this node")); }
        markLosses(ul);
        details.dataset.loaded = "1";
      })
      .catch(function () { ul.textContent = ""; ul.appendChild(el("li", "error", "could not load")); delete details.dataset.loaded; });
  }, true);
})();
