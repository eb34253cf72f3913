// llmbench report: draws every figure from the JSON beside its div (plotly.js is inlined once, above),
// makes the summary table sortable and filterable, and shows script errors on the page.
(function () {
  "use strict";
  var errorList = document.getElementById("script-errors");

  function showErrors() {
    var errors = window.llmbenchErrors || [];
    while (errorList.childNodes.length < errors.length) {
      var li = document.createElement("li");
      li.textContent = "script error: " + errors[errorList.childNodes.length];
      errorList.appendChild(li);
    }
    errorList.hidden = errors.length === 0;
  }
  window.addEventListener("error", function () { setTimeout(showErrors, 0); });

  function drawFigures() {
    var template = JSON.parse(document.getElementById("plotly-template").textContent);
    document.querySelectorAll("script.figure-json").forEach(function (node) {
      try {
        var fig = JSON.parse(node.textContent);
        var layout = fig.layout || {};
        layout.template = template;
        Plotly.newPlot(node.dataset.target, fig.data, layout, {displaylogo: false, responsive: true});
      } catch (e) {
        window.llmbenchErrors.push(node.dataset.target + ": " + e.message);
      }
    });
  }

  // numbers sort as numbers ("1,368.8", "1.23×", "2.94e-03"); text by natural order ("bs2" before "bs16")
  function sortKey(cell) {
    var text = cell.textContent;
    var number = parseFloat(text.replace(/,/g, ""));
    return {text: text, number: isNaN(number) || !/^-?[\d.,]+(e[-+]?\d+)?×?$/.test(text) ? null : number,
            empty: text === "–"};
  }

  function compare(a, b) {
    if (a.number !== null && b.number !== null) { return a.number - b.number; }
    return a.text.localeCompare(b.text, undefined, {numeric: true});
  }

  function makeSortable(table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.addEventListener("click", function () {
        var descending = th.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.map.call(body.rows, function (row) { return [sortKey(row.cells[index]), row]; });
        rows.sort(function (a, b) {
          if (a[0].empty !== b[0].empty) { return a[0].empty ? 1 : -1; }  // no value: last, either way
          return descending ? compare(b[0], a[0]) : compare(a[0], b[0]);
        });
        rows.forEach(function (pair) { body.appendChild(pair[1]); });
      });
    });
  }

  function makeFilterable(table, input, counter) {
    function apply() {
      var terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var text = row.textContent.toLowerCase();
        var keep = terms.every(function (t) { return text.indexOf(t) >= 0; });
        row.hidden = !keep;
        shown += keep ? 1 : 0;
      });
      counter.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
    }
    input.addEventListener("input", apply);
    apply();
  }

  function markStatuses(table) {
    var headers = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) { return th.textContent; });
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      headers.forEach(function (h, i) {
        if (h.indexOf("status") === 0) { row.cells[i].className = "st-" + row.cells[i].textContent; }
      });
    });
  }

  // Column groups: a checkbox per group; at load, the groups the window cannot fit are hidden, last group
  // first (energy, utilisation, flags, memory, quality), and the line beside the boxes says so.
  function fitGroups(table, wrap) {
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input.group-toggle"));
    boxes.forEach(function (box) {
      box.addEventListener("change", function () { table.classList.toggle("hide-" + box.value, !box.checked); });
    });
    var hidden = [];
    for (var i = boxes.length - 1; i > 0 && wrap.scrollWidth > wrap.clientWidth; i--) {
      boxes[i].checked = false;
      table.classList.add("hide-" + boxes[i].value);
      hidden.unshift(boxes[i].value);
    }
    document.getElementById("groups-hidden").textContent = hidden.length ?
      "(" + hidden.join(", ") + " hidden to fit this window: tick to show; the first column stays as you scroll)" : "";
  }

  var table = document.getElementById("summary");
  if (table) {
    fitGroups(table, document.getElementById("summary-wrap"));
    markStatuses(table);
    makeSortable(table);
    makeFilterable(table, document.getElementById("table-filter"), document.getElementById("table-count"));
  }
  if (window.Plotly) { drawFigures(); } else { window.llmbenchErrors.push("plotly.js did not load"); }
  showErrors();
})();
