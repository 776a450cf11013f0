// Live system status over the websocket; reconnects with backoff.
(function () {
  "use strict";
  var box = document.getElementById("system-status");
  if (!box) { return; }
  var state = document.getElementById("ws-state");
  var delay = 1000;
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + box.dataset.ws);
    ws.onopen = function () { state.textContent = "live"; state.className = "badge ok"; delay = 1000; };
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type === "status") {
        document.getElementById("status-server-time").textContent = data.status.server_time;
        document.getElementById("status-database").textContent = data.status.database;
      }
    };
    ws.onclose = function () {
      state.textContent = "reconnecting…"; state.className = "badge warn";
      setTimeout(connect, delay); delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
