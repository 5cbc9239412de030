/* The kiosk: an on-screen keypad (touch, or a USB keyboard's digits, Backspace, Enter and
 * Escape) for officer number and PIN, the decision in large type, and the live slot grid.
 * A badge read by the dock's own reader is decided by the daemon: the grid's poll brings
 * that decision while it is fresh, and it is shown once, as a keypad decision is.
 * A slot whose recorder was just returned asks who returned it (001 art.19(3)): "sign with
 * PIN" takes a number and PIN on the same keypad for that slot; "sign with badge" asks the
 * daemon to take the next badge read at the dock as the signature.
 * Builds the page with textContent only: the grid holds text a recorder chose. The PIN
 * lives in one variable until it is sent, and is cleared then (and after a pause). */
(function () {
  "use strict";
  var POLL_MS = 1500;          /* the slot grid */
  var IDLE_MS = 30000;         /* a half-typed number or PIN is cleared after this */
  var DECISION_MS = 20000;     /* a decision stays on screen this long (the daemon keeps a
                                  badge decision as long: dock/daemon/badge_reads.py) */
  var MAX_DIGITS = 32;

  var words = {};
  var mode = "checkout", step = "number", number = "", pin = "";
  var handoverSlot = null;     /* the slot whose handover the keypad signs (mode "handover") */
  var idleTimer = null, decisionTimer = null, busy = false, grantedSlot = null;
  var badgeShown = null, badgeSeen = null;   /* the badge decision on screen; the last shown */

  function $(id) { return document.getElementById(id); }
  function csrf() {
    var field = document.querySelector('input[name="csrf_token"]');
    return field ? field.value : "";
  }

  function render() {
    var panel = $("panel");
    panel.setAttribute("data-mode", mode);
    panel.setAttribute("data-step", step);
    $("prompt").textContent = mode === "cancel" ? words.cancel_mode
      : mode === "handover" ? (words.handover_mode || "").replace("{slot}", handoverSlot)
      : words.idle;
    $("entry-label").textContent = step === "pin" ? words.enter_pin : words.enter_number;
    $("entry-value").textContent = step === "pin" ? "\u2022".repeat(pin.length) : number;
    $("ok").textContent = step === "pin" ? words.ok : words.next;
    $("mode").textContent = mode === "checkout" ? words.cancel_grant : words.checkout_mode;
  }

  function reset() {
    number = ""; pin = ""; step = "number"; mode = "checkout"; busy = false;
    handoverSlot = null;
    $("decision").hidden = true;
    $("panel").removeAttribute("data-outcome");
    grantedSlot = null; badgeShown = null;
    render();
  }

  function touched() {
    if (idleTimer) { clearTimeout(idleTimer); }
    idleTimer = setTimeout(reset, IDLE_MS);
  }

  function press(key) {
    if (busy) { return; }
    if (!$("decision").hidden) { reset(); }
    touched();
    if (/^[0-9]$/.test(key)) {
      if (step === "number" && number.length < MAX_DIGITS) { number += key; }
      if (step === "pin" && pin.length < MAX_DIGITS) { pin += key; }
    } else if (key === "back") {
      if (step === "pin") {
        if (pin) { pin = pin.slice(0, -1); } else { step = "number"; }
      } else { number = number.slice(0, -1); }
    } else if (key === "clear") {
      number = ""; pin = ""; step = "number";
    } else if (key === "ok") {
      if (step === "number" && number) { step = "pin"; }
      else if (step === "pin" && pin) { submit(); return; }
    } else if (key === "mode") {
      mode = mode === "checkout" ? "cancel" : "checkout"; number = ""; pin = ""; step = "number";
      handoverSlot = null;
    }
    render();
  }

  function show(outcome, title, lines, ms) {
    var list = $("decision-lines");
    $("decision-title").textContent = title;
    while (list.firstChild) { list.removeChild(list.firstChild); }
    (lines || []).forEach(function (line) {
      var li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
    $("decision").hidden = false;
    $("panel").setAttribute("data-outcome", outcome);
    badgeShown = null;
    if (decisionTimer) { clearTimeout(decisionTimer); }
    decisionTimer = setTimeout(reset, ms === undefined ? DECISION_MS : ms);
  }

  /* The daemon's latest decision for a badge read at the dock (null: none fresh). Shown
   * once per decision, for what is left of its time; gone when the daemon no longer has
   * it, so a later visitor does not see it. Whatever was typed is dropped first. */
  function badge(b) {
    if (!b) { if (badgeShown !== null) { reset(); } return; }
    if (b.id === badgeSeen || busy) { return; }   /* a keypad request first: next poll */
    badgeSeen = b.id;
    number = ""; pin = ""; step = "number"; mode = "checkout"; handoverSlot = null;
    if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
    render();
    var ms = Math.max(0, Math.min(DECISION_MS, (b.seconds_left || 0) * 1000));
    if (b.signed !== undefined) {   /* the badge signed a return's handover */
      show(signedOutcome(b), b.title, b.signed ? b.lines : b.reasons, ms);
      badgeShown = b.id; grantedSlot = null;
      return;
    }
    show(b.granted ? "granted" : "refused", b.title, b.granted ? b.lines : b.reasons, ms);
    badgeShown = b.id;
    grantedSlot = b.granted ? b.slot : null;
  }

  function signedOutcome(d) {
    if (!d.signed) { return "refused"; }
    return d.by_custodian ? "signed" : "signed-other";
  }

  function post(url, payload) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(payload)
    }).then(function (r) { return r.json(); });
  }

  /* A card's "sign with PIN": the keypad signs that slot's handover. */
  function signWithPin(slot) {
    if (busy) { return; }
    reset();
    mode = "handover"; handoverSlot = slot;
    touched();
    render();
  }

  /* A card's "sign with badge": the daemon takes the next badge read as the signature. */
  function signWithBadge(slot) {
    if (busy) { return; }
    reset();
    busy = true;
    show("asking", words.asking, []);
    post($("urls").getAttribute("data-handover"), { slot: slot }).then(function (d) {
      busy = false;
      if (d.error) { show("error", words.failed, [d.error]); return; }
      if (d.armed) { show("swipe", d.title, [], (d.seconds || 20) * 1000); return; }
      show("refused", d.title, d.reasons);
    }).catch(function () { busy = false; show("error", words.failed, []); });
  }

  function submit() {
    var urls = $("urls");
    var url = mode === "cancel" ? urls.getAttribute("data-cancel")
      : mode === "handover" ? urls.getAttribute("data-handover") : urls.getAttribute("data-checkout");
    var payload = { officer: number, pin: pin };
    if (mode === "handover") { payload.slot = handoverSlot; }
    var body = JSON.stringify(payload);
    payload = null;
    pin = ""; number = ""; step = "number"; busy = true;   /* nothing of the PIN is kept */
    render();
    show("asking", words.asking, []);
    fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: body
    }).then(function (r) { return r.json(); }).then(function (d) {
      busy = false;
      if (d.error) { show("error", words.failed, [d.error]); return; }
      if (d.granted) { grantedSlot = d.slot; show("granted", d.title, d.lines); poll(); return; }
      if (d.cancelled) { show("cancelled", d.title, []); poll(); return; }
      if (d.signed !== undefined) {
        show(signedOutcome(d), d.title, d.signed ? d.lines : d.reasons); poll(); return;
      }
      show("refused", d.title, d.reasons);
    }).catch(function () { busy = false; show("error", words.failed, []); });
    body = null;
  }

  function card(s) {
    var el = document.createElement("div");
    var take = s.take || (grantedSlot !== null && s.slot === grantedSlot && s.state === "checked_out");
    el.className = "slot-card state-" + s.state + (take ? " take" : "") + (s.notice ? " notice" : "");
    el.setAttribute("data-slot", s.slot);
    el.setAttribute("data-state", s.state);
    var head = document.createElement("div");
    head.className = "slot-head";
    var name = document.createElement("span");
    name.className = "slot-name"; name.textContent = s.title;
    var label = document.createElement("span");
    label.className = "slot-label"; label.textContent = s.label;
    head.appendChild(name); head.appendChild(label);
    el.appendChild(head);
    (s.lines || []).forEach(function (line) {
      var p = document.createElement("div");
      p.className = "slot-line"; p.textContent = line;
      el.appendChild(p);
    });
    if (s.handover) {   /* a return waiting for its signature: who returned it? */
      var h = document.createElement("div");
      h.className = "slot-handover";
      var ask = document.createElement("div");
      ask.className = "slot-handover-ask"; ask.textContent = s.handover;
      h.appendChild(ask);
      [["handover-pin", words.handover_pin, signWithPin],
       ["handover-badge", words.handover_badge, signWithBadge]].forEach(function (b) {
        var button = document.createElement("button");
        button.type = "button"; button.className = b[0]; button.textContent = b[1];
        button.setAttribute("data-slot", s.slot);
        button.addEventListener("click", function () { b[2](s.slot); });
        h.appendChild(button);
      });
      el.appendChild(h);
    }
    if (s.notice) {
      var n = document.createElement("div");
      n.className = "slot-notice" + (s.safe ? " safe" : " unsafe"); n.textContent = s.notice;
      el.appendChild(n);
    }
    return el;
  }

  var polling = false;
  function poll() {
    if (polling) { return; }
    polling = true;
    var grid = $("slots");
    fetch(grid.getAttribute("data-kiosk-slots"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (!d.slots) { grid.classList.add("stale"); return; }
        grid.classList.remove("stale");
        while (grid.firstChild) { grid.removeChild(grid.firstChild); }
        badge(d.badge || null);   /* first: a badge's grant marks its slot in the grid */
        d.slots.forEach(function (s) { grid.appendChild(card(s)); });
        grid.setAttribute("data-polled", String(Date.now()));
      })
      .catch(function () { grid.classList.add("stale"); })
      .then(function () { polling = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    try { words = JSON.parse($("kiosk-words").textContent); } catch (e) { words = {}; }
    document.querySelectorAll("#keypad .key").forEach(function (b) {
      b.addEventListener("click", function () { press(b.getAttribute("data-key")); });
    });
    $("ok").addEventListener("click", function () { press("ok"); });
    $("mode").addEventListener("click", function () { press("mode"); });
    $("decision").addEventListener("click", function () { if (!busy) { reset(); } });
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.altKey || e.metaKey) { return; }
      if (/^[0-9]$/.test(e.key)) { press(e.key); }
      else if (e.key === "Backspace") { press("back"); }
      else if (e.key === "Enter") { press("ok"); }
      else if (e.key === "Escape") { reset(); }
      else { return; }
      e.preventDefault();
    });
    reset();
    poll();
    setInterval(function () { if (!document.hidden) { poll(); } }, POLL_MS);
  });
}());
