// Loaded by every page (templates/base.html): the phone menu, and proportional bars whose
// sizes come from data-flex (style attributes in the markup are refused by the page's CSP).
(function () {
  "use strict";
  var toggle = document.getElementById("menu-toggle");
  if (toggle) {
    var bar = toggle.closest(".topbar");
    toggle.addEventListener("click", function () {
      var open = bar.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  window.amiFlex = function (root) {
    (root || document).querySelectorAll("[data-flex]").forEach(function (el) { el.style.flex = el.dataset.flex; });
  };
  window.amiFlex();

  // Times as the server prints them (amisite/display.py): the utility's zone, named.
  var zone = document.body.dataset.timeZone || "UTC";
  var formats = {};
  function formatter(seconds) {
    var key = seconds ? "s" : "m";
    if (!formats[key]) {
      var options = {timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"};
      if (seconds) { options.second = "2-digit"; }
      formats[key] = new Intl.DateTimeFormat("en-GB", options);
    }
    return formats[key];
  }
  window.amiWhen = function (value, seconds) {
    if (value === null || value === undefined || value === "") { return "–"; }
    var parts = {};
    formatter(seconds).formatToParts(new Date(value)).forEach(function (p) { parts[p.type] = p.value; });
    var text = parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
    return text + (seconds ? ":" + parts.second : "") + " " + parts.timeZoneName;
  };
  window.amiTimeZone = zone;
  // uPlot draws its time axes in this zone too (not the browser's).
  window.amiTzDate = function (ts) { return window.uPlot ? window.uPlot.tzDate(new Date(ts * 1000), zone) : new Date(ts * 1000); };
})();
