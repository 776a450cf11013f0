// Live progress of one bulk command over its websocket: counts by state, the bar and the
// state. A bulk command with nothing left to do when the page loads is not watched; one that
// is decided or cancelled while watched reloads once (to show who and the buttons it has now).
(function () {
  "use strict";
  var box = document.getElementById("bulk-progress");
  if (!box || box.dataset.live !== "1") { return; }
  var state = document.getElementById("bulk-state");
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + window.location.host + box.dataset.ws);
  box.dataset.watch = "live";
  ws.onmessage = function (msg) {
    var data = JSON.parse(msg.data);
    if (data.type !== "bulk") { return; }
    var bulk = data.bulk;
    Object.keys(bulk.counts).forEach(function (key) {
      var cell = document.getElementById("bulk-" + key);
      if (cell) { cell.textContent = bulk.counts[key]; }
    });
    document.getElementById("bulk-done").textContent = bulk.done;
    var bar = document.getElementById("bulk-bar");
    bar.max = Math.max(bulk.size, 1); bar.value = bulk.done;
    if (bulk.state !== state.dataset.state) {
      ws.onmessage = null; ws.close();
      window.location.reload();
      return;
    }
    if (bulk.state === "approved" && bulk.total > 0 && bulk.done >= bulk.total) {
      box.dataset.watch = "finished";
      ws.onmessage = null; ws.close();
    }
  };
})();
