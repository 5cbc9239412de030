/* supervisor.js: an export's progress on the access page, without reloading the page.
 *
 * Each running export is a <li data-live="export" data-live-url="/api/v1/supervisor/
 * exports/ID" data-live-every="2"> whose words (in the page's language) and download
 * links are in its data-* attributes; live.js polls the URL and calls this renderer,
 * which shows the state and percentage, and once the export is done, its links, and
 * stops polling. Text only through textContent (live.js's rule).
 */
(function () {
  "use strict";
  if (!window.DockLive) { return; }
  var live = window.DockLive;

  function link(href, words) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = words;
    return a;
  }

  live.renderers["export"] = function (li, data) {
    var state = data.state === "done" || data.state === "failed" ? data.state : "running";
    var shown = li.querySelector("[data-test=export-state]");
    shown.textContent = (li.getAttribute("data-word-" + state) || state) + " " +
      String(Number(data.percent) || 0) + "%";
    li.setAttribute("data-state", state);
    if (state === "running") { return; }
    if (data.problem) { li.appendChild(live.text("small", " " + data.problem)); }
    if (state === "done") {
      var links = document.createElement("span");
      links.className = "downloads";
      links.appendChild(document.createTextNode(" "));
      links.appendChild(link(li.getAttribute("data-zip"), li.getAttribute("data-word-zip")));
      if (data.iso) {
        links.appendChild(document.createTextNode(" · "));
        links.appendChild(link(li.getAttribute("data-iso"), li.getAttribute("data-word-iso")));
      }
      li.appendChild(links);
    }
    li.removeAttribute("data-live");  /* finished: live.js stops asking */
  };
}());
