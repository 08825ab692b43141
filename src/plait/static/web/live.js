// plait serve: live pages, the report's filter and tooltips. No framework, no other host.
(function () {
  "use strict";

  // -- live: a server-sent event names the version the store is at; when it is not the one
  // this page shows, fetch the page's part again and swap it in.
  var target = document.getElementById("live-part");
  var state = target ? target.dataset : {};
  var stream = state.live;
  var partUrl = state.part;
  var dot = document.getElementById("live-dot");
  var fetching = false;
  var again = false;

  function detailsKey(d) {
    // A <details> with an id (a log, a mapped task's group) is known by it: its summary's
    // text changes as the run goes (a group's counts); one without, by its task and summary.
    if (d.id) { return d.id; }
    var owner = d.closest("[data-task-id]");
    var summary = d.querySelector("summary");
    return "|" + (owner ? owner.dataset.taskId : "") + "|" + (summary ? summary.textContent : "");
  }

  function openDetails() {
    // Which <details> are open or closed by the person (a small group starts open), so that a
    // refresh keeps them so.
    var seen = new Map();
    target.querySelectorAll("details").forEach(function (d) { seen.set(detailsKey(d), d.open); });
    return seen;
  }

  function reopen(seen) {
    target.querySelectorAll("details").forEach(function (d) {
      var key = detailsKey(d);
      if (seen.has(key)) { d.open = seen.get(key); }
    });
  }

  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(partUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        var version = response.headers.get("x-plait-version");
        return response.text().then(function (html) { return [html, version]; });
      })
      .then(function (got) {
        var html = got[0];
        var open = openDetails();
        var active = document.activeElement;
        var typing = active && target.contains(active) && active.matches("input, textarea, select");
        if (!typing) {
          target.innerHTML = html;
          if (got[1]) { state.version = got[1]; }
          reopen(open);
          hide();  // a tooltip of a bar that was just replaced would stay up, stale
          applyFilter();
          document.dispatchEvent(new CustomEvent("plait:updated"));
        }
      })
      .catch(function () { /* the next change tries again */ })
      .then(function () {
        fetching = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (stream && partUrl && target && window.EventSource) {
    var source = new EventSource(stream);
    source.addEventListener("open", function () { if (dot) { dot.hidden = false; } });
    source.addEventListener("error", function () { if (dot) { dot.hidden = true; } });
    source.addEventListener("change", function (event) {
      // The stream names the version the store is at; fetch only what this page lacks.
      if (event.data !== state.version) { refresh(); }
    });
  }

  // -- the report's task filter (delegated: the timeline is replaced on each refresh).
  function applyFilter() {
    var filter = document.getElementById("filter");
    var show = document.getElementById("show");
    var shown = document.getElementById("shown");
    if (!filter || !show) { return; }
    var rows = document.querySelectorAll(".gantt .row");
    var text = filter.value.trim().toLowerCase();
    var what = show.value;
    var count = 0;
    rows.forEach(function (row) {
      var id = (row.dataset.taskId || "").toLowerCase();
      var ok = (!text || id.indexOf(text) !== -1) &&
        (!what || (what === "critical" ? row.classList.contains("critical")
                                       : row.dataset.status === what));
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    // A mapped task's group (as report.js does): shown while its row or an instance's is,
    // opened while a filter finds instances in it, closed again when the filter is cleared.
    document.querySelectorAll(".gantt details.group").forEach(function (group) {
      var head = group.querySelector(".group-row");
      var found = group.querySelector(".row.instance:not([hidden])") !== null;
      group.hidden = head.hidden && !found;
      if (found) { head.hidden = false; }
      if ((text || what) && found && !group.open) {
        group.open = true;
        group.dataset.filterOpened = "1";
      } else if (!(text || what) && group.dataset.filterOpened) {
        group.open = false;
        delete group.dataset.filterOpened;
      }
    });
    if (shown) {
      shown.textContent = count === rows.length ? rows.length + " tasks"
                                                : count + " of " + rows.length + " tasks";
    }
  }
  document.addEventListener("input", function (event) {
    if (event.target && event.target.id === "filter") { applyFilter(); }
  });
  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "show") { applyFilter(); }
  });

  // -- tooltips on the timeline's bars.
  var tip = document.getElementById("tip");
  var held = null;
  function hide() {
    if (held) { held.setAttribute("title", held.dataset.tip); held = null; }
    if (tip) { tip.hidden = true; }
  }
  document.addEventListener("mouseover", function (event) {
    var el = event.target.closest ? event.target.closest(".bar[title]") : null;
    if (!el || !tip) { return; }
    hide();
    held = el;
    el.dataset.tip = el.getAttribute("title");
    el.removeAttribute("title");
    tip.textContent = el.dataset.tip;
    tip.hidden = false;
  });
  document.addEventListener("mousemove", function (event) {
    if (!tip || tip.hidden) { return; }
    var x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var y = event.clientY + 16;
    if (y + tip.offsetHeight > window.innerHeight - 8) { y = event.clientY - tip.offsetHeight - 12; }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });
  document.addEventListener("mouseout", function (event) {
    if (held && event.target === held) { hide(); }
  });

  // -- a click on a graph node shows its row in the timeline.
  document.addEventListener("click", function (event) {
    var node = event.target.closest ? event.target.closest(".dag .node") : null;
    if (node) {
      var id = node.getAttribute("data-task-id");
      var rows = document.querySelectorAll(".gantt .row");
      for (var i = 0; i < rows.length; i += 1) {
        if (rows[i].dataset.taskId === id) {
          rows[i].scrollIntoView({ block: "center" });
          rows[i].classList.add("flash");
          break;
        }
      }
    }
    var share = event.target.closest ? event.target.closest("input.share") : null;
    if (share) { share.select(); }
  });
})();
