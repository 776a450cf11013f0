// Live progress of one read run over its websocket. A run that is finished when the page
// loads is not watched at all; a run that finishes while watched reloads the page once
// (to show each meter's result), and the reloaded page, being finished, watches nothing.
(function () {
  "use strict";
  var box = document.getElementById("run-progress");
  if (!box) { return; }
  var FINISHED = ["succeeded", "partial", "failed"];
  var status = document.getElementById("run-status");
  if (FINISHED.indexOf(status.dataset.status) >= 0) { box.dataset.watch = "finished"; return; }
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + window.location.host + box.dataset.ws);
  box.dataset.watch = "live";
  function text(id, value) { document.getElementById(id).textContent = value; }
  ws.onmessage = function (msg) {
    var data = JSON.parse(msg.data);
    if (data.type !== "run") { return; }
    var run = data.run;
    status.dataset.status = run.status;
    text("run-status", run.status_label || run.status);
    text("run-done", run.done);
    text("run-total", run.total);
    text("run-ok", run.succeeded);
    text("run-failed", run.failed);
    text("run-values", run.values_stored);
    var bar = document.getElementById("run-bar");
    bar.max = Math.max(run.total, 1); bar.value = run.done;
    if (FINISHED.indexOf(run.status) >= 0) {
      box.dataset.watch = "finished";
      ws.onmessage = null; ws.close();
      window.location.reload();
    }
  };
})();
