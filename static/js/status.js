// Live system status over the websocket; reconnects with backoff. Each message is also
// dispatched as an "ami:status" event, so pages (home.js) render what they show.
(function () {
  "use strict";
  var box = document.getElementById("system-status");
  if (!box) { return; }
  var state = document.getElementById("ws-state");
  var delay = 1000;
  function text(id, value) {
    var el = document.getElementById(id);
    if (el && value !== undefined) { el.textContent = value; }
  }
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + box.dataset.ws);
    ws.onopen = function () { state.textContent = "live"; state.className = "badge ok"; delay = 1000; };
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type === "status") {
        text("status-server-time", data.status.server_time);
        text("status-database", data.status.database);
        document.dispatchEvent(new CustomEvent("ami:status", {detail: data.status}));
      }
    };
    ws.onclose = function () {
      state.textContent = "reconnecting…"; state.className = "badge warn";
      setTimeout(connect, delay); delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
