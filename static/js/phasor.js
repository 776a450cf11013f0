// Meter page: "Read instantaneous values" queues an on-demand read, follows its progress
// over the run's websocket and redraws the phasor card when the run has finished.
(function () {
  "use strict";
  var finished = ["succeeded", "partial", "failed"];

  function refreshCard() {
    return fetch(window.location.pathname + window.location.search, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("phasor-card");
        var card = document.getElementById("phasor-card");
        if (fresh && card) { card.replaceWith(fresh); bind(); }
      });
  }

  function follow(runId, progress) {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + window.location.host + "/ws/runs/" + runId + "/");
    var done = false;
    ws.onmessage = function (msg) {
      var data = JSON.parse(msg.data);
      if (data.type !== "run" || done) { return; }
      progress.textContent = "Run #" + runId + ": " + data.run.status + " (" + data.run.done + "/" + data.run.total + ")";
      if (finished.indexOf(data.run.status) >= 0) {
        done = true;
        ws.close();
        refreshCard().then(function () {
          var p = document.getElementById("instantaneous-progress");
          if (p) { p.textContent = "Run #" + runId + " " + data.run.status; p.dataset.run = runId; }
        });
      }
    };
    ws.onerror = function () { progress.textContent = "Live progress unavailable; see run #" + runId + "."; };
  }

  function bind() {
    var form = document.getElementById("instantaneous-form");
    if (!form || form.dataset.bound) { return; }
    form.dataset.bound = "1";
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var progress = document.getElementById("instantaneous-progress");
      var button = document.getElementById("read-instantaneous");
      button.disabled = true;
      progress.textContent = "Queued…";
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" })
        .then(function (response) {
          var match = /\/runs\/(\d+)\/?$/.exec(new URL(response.url).pathname);
          if (!match) { throw new Error("no run"); }
          follow(match[1], progress);
        })
        .catch(function () { progress.textContent = "The read could not be started."; button.disabled = false; });
    });
  }
  bind();
})();
