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
})();
