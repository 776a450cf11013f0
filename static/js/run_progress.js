// Live progress of one read run over its websocket; reloads once when the run ends.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box) { return; }
  var finished = ["succeeded", "partial", "failed"];
  var startedFinished = finished.indexOf(document.getElementById("run-status").textContent.trim().toLowerCase()) >= 0;
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + window.location.host + box.dataset.ws);
  ws.onmessage = function (msg) {
    var data = JSON.parse(msg.data);
    if (data.type !== "run") { return; }
    var run = data.run;
    document.getElementById("run-status").textContent = run.status;
    document.getElementById("run-done").textContent = run.done;
    document.getElementById("run-total").textContent = run.total;
    document.getElementById("run-ok").textContent = run.succeeded;
    document.getElementById("run-failed").textContent = run.failed;
    document.getElementById("run-values").textContent = run.values_stored;
    var bar = document.getElementById("run-bar");
    bar.max = Math.max(run.total, 1); bar.value = run.done;
    if (finished.indexOf(run.status) >= 0 && !startedFinished) { window.location.reload(); }
  };
})();
