(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll(".gantt .row"));
  var byId = new Map();
  rows.forEach(function (row) { byId.set(row.dataset.taskId, row); });
  var filter = document.getElementById("filter");
  var show = document.getElementById("show");
  var shown = document.getElementById("shown");
  var groups = Array.prototype.slice.call(document.querySelectorAll(".gantt details.group"));
  function apply() {
    var text = filter.value.trim().toLowerCase();
    var what = show.value;
    var count = 0;
    rows.forEach(function (row) {
      var ok = (!text || row.dataset.taskId.toLowerCase().indexOf(text) !== -1) &&
        (!what || (what === "critical" ? row.classList.contains("critical")
                                       : row.dataset.status === what));
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    groups.forEach(function (group) { fit(group, Boolean(text || what)); });
    shown.textContent = count === rows.length ? rows.length + " tasks"
                                              : count + " of " + rows.length + " tasks";
  }
  // A mapped task's group: shown while its row or one of its instances' rows is, opened while
  // a filter finds instances in it (and closed again when the filter is cleared).
  function fit(group, filtering) {
    var head = group.querySelector(".group-row");
    var found = group.querySelector(".row.instance:not([hidden])") !== null;
    group.hidden = head.hidden && !found;
    if (found) { head.hidden = false; }
    if (filtering && found && !group.open) {
      group.open = true;
      group.dataset.filterOpened = "1";
    } else if (!filtering && group.dataset.filterOpened) {
      group.open = false;
      delete group.dataset.filterOpened;
    }
  }
  filter.addEventListener("input", apply);
  show.addEventListener("change", apply);

  var tip = document.getElementById("tip");
  var held = null;
  function hide() {
    if (held) { held.setAttribute("title", held.dataset.tip); held = null; }
    tip.hidden = true;
  }
  document.addEventListener("mouseover", function (event) {
    var el = event.target.closest ? event.target.closest(".bar[title]") : null;
    if (!el) { return; }
    hide();
    held = el;
    el.dataset.tip = el.getAttribute("title");
    el.removeAttribute("title");
    tip.textContent = el.dataset.tip;
    tip.hidden = false;
  });
  document.addEventListener("mousemove", function (event) {
    if (tip.hidden) { return; }
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight - 8) {
      y = event.clientY - tip.offsetHeight - 12;
    }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });
  document.addEventListener("mouseout", function (event) {
    if (held && event.target === held) { hide(); }
  });

  var dag = document.querySelector(".dag");
  if (dag) {
    dag.addEventListener("click", function (event) {
      var node = event.target.closest ? event.target.closest(".node") : null;
      var row = node ? byId.get(node.getAttribute("data-task-id")) : null;
      if (!row) { return; }
      filter.value = ""; show.value = ""; apply();
      row.scrollIntoView({block: "center"});
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 1600);
    });
  }
})();
