/* home.js: the start page's slot grid, redrawn from /api/v1/slots without reloading.
 * Text only (textContent): a slot's reasons may hold words a recorder chose. */
(function () {
  "use strict";
  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = value === null || value === undefined ? "" : String(value);
    row.appendChild(td);
    return td;
  }
  function reason(td, message) {
    var span = document.createElement("span");
    span.className = "reason";
    span.textContent = String(message);
    td.appendChild(document.createTextNode(" "));
    td.appendChild(span);
  }
  window.DockLive.renderers["home-slots"] = function (tbody, data) {
    var labels = JSON.parse(tbody.getAttribute("data-labels") || "{}");
    var rows = document.createDocumentFragment();
    (data.slots || []).forEach(function (s) {
      var tr = document.createElement("tr");
      tr.className = "slot" + (s.ready ? " ready" : "");
      tr.setAttribute("data-slot", String(s.slot));
      cell(tr, s.slot);
      cell(tr, labels[s.state] !== undefined ? labels[s.state] : s.state);
      cell(tr, s.device || labels[""]);
      var detail = cell(tr, "");
      var off = s.offload;
      if (off && off.total) {
        detail.textContent = String(labels["%"] || "").replace(
          "{percent}", String(Math.floor(100 * off.done / off.total)));
      }
      (s.reasons || []).forEach(function (r) { reason(detail, r.message); });
      if (s.error) { reason(detail, s.error); }
      rows.appendChild(tr);
    });
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    tbody.appendChild(rows);
  };
}());
