/* live.js: small polling helper for the dock's pages (vendored here: no CDN, no build).
 *
 * An element with data-live="NAME" data-live-url="/api/v1/..." [data-live-every="5"]
 * is refreshed every N seconds (default 5): the JSON at the URL is fetched (same
 * origin, with the session cookie) and handed to DockLive.renderers[NAME](element,
 * data). Renderers must build the page with textContent / createElement only, never
 * innerHTML: the data holds text a recorder chose. A renderer that removes the
 * element's data-live attribute stops its polling (something finished). Polling pauses while the page is
 * hidden and backs off (up to 60 s) while the server does not answer.
 */
(function () {
  "use strict";
  var renderers = {};

  function csrfToken() {
    var meta = document.querySelector('input[name="csrf_token"]');
    return meta ? meta.value : "";
  }

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) { el.className = cls; }
    return el;
  }

  function start(el) {
    var name = el.getAttribute("data-live");
    var url = el.getAttribute("data-live-url");
    var every = Math.max(1, parseInt(el.getAttribute("data-live-every") || "5", 10)) * 1000;
    var delay = every;
    function tick() {
      if (!el.hasAttribute("data-live")) { return; }  /* a renderer said: done, stop */
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (data) {
          var render = renderers[name];
          if (render) { render(el, data); }
          el.classList.remove("stale");
          delay = every;
        })
        .catch(function () { el.classList.add("stale"); delay = Math.min(delay * 2, 60000); })
        .then(function () { setTimeout(tick, delay); });
    }
    setTimeout(tick, every);
  }

  window.DockLive = {
    renderers: renderers,
    text: text,
    csrfToken: csrfToken,
    /* post(url, body): JSON POST with the session's CSRF token; a Promise of the JSON. */
    post: function (url, body) {
      return fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(body || {})
      }).then(function (r) { return r.json(); });
    }
  };
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(start);
  });
}());
