// "select this page" ticks every row; the bulk button names what it will do.
(function () {
  var all = document.getElementById("select-page");
  if (!all) { return; }
  all.addEventListener("change", function () {
    document.querySelectorAll("#meter-table input[name=meter]").forEach(function (box) { box.checked = all.checked; });
  });
  var everything = document.getElementById("all-filtered"), button = document.getElementById("bulk-submit");
  if (!everything || !button) { return; }
  everything.addEventListener("change", function () { button.textContent = everything.checked ? "Add all matching" : "Add selected"; });
})();
