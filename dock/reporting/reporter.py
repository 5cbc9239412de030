"""Reporting to headquarters: one thread that owns the broker link and the outbox.

It feeds the outbox from the audit log, publishes queued events (marking them sent on
PUBACK), keeps the retained birth, state and slot topics current, sends health every
interval (only the newest waits while the broker is away), and answers commands. The
dock never waits for any of this: with no broker, events simply wait on disk.

Over 400 lines on purpose: every method runs on that one thread and shares its state (the
link's in-flight handles, the outbox's acknowledgements, what waits to be sent), which is
why none of it needs a lock; split apart, that state would be reached from several modules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from dock.config import MqttConfig
from dock.domain.audit_kinds import AuditKind
from dock.domain.interfaces import BrokerLink
from dock.reporting.commands import REQUESTS, arguments, refusal, request_arguments
from dock.reporting.feed import feed
from dock.reporting.health import dock_health, slot_summary
from dock.reporting.outbox import WARN_PENDING, Outbox
from dock.services import requests
from dock.services.errors import RequestError
from mqtt_contract.contract import (
    HQ_STATUS,
    Command,
    ContractError,
    DockState,
    Kind,
    command_filter,
    decode,
    dock_topic,
    encode,
    hq_online,
    parse_topic,
    utc,
)

log = logging.getLogger("dock.reporter")

#: Events published and not yet acknowledged, at most.
WINDOW = 100
FEED_EVERY_S = 0.5
PRUNE_EVERY_S = 3600.0
#: After the broker refused a publish (ACL, quota): wait this long before trying again.
REFUSED_PAUSE_S = 30.0


class Reporter:
    def __init__(
        self,
        *,
        link: BrokerLink,
        outbox: Outbox,
        service: Any,
        cfg: MqttConfig,
        dock_id: str,
        software: str,
        config_hash: str,
        state_dir: str,
        evidence_dir: str,
        clock: Callable[[], float] = time.time,
        boot: str | None = None,
        replication: Callable[[float], dict[str, Any] | None] | None = None,
    ) -> None:
        self.link = link
        self.outbox = outbox
        self.service = service
        self.cfg = cfg
        self.site = cfg.site
        self.dock_id = dock_id
        self.software = software
        self.config_hash = config_hash
        self.state_dir = state_dir
        self.evidence_dir = evidence_dir
        self._clock = clock
        #: Health's ``replication`` object at a time (None: the dock does not replicate).
        self._replication = replication
        self.boot = boot or secrets.token_hex(8)
        self.started = clock()
        self._keys = cfg.public_keys()
        self._drift_bound = float(service.policy.max_clock_drift_after_sync_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        #: publish handle -> outbox row id (None: not an outbox row)
        self._inflight: dict[Hashable, int | None] = {}
        self._pump_after = 0
        self._paused_until = 0.0
        self._acked: list[int] = []
        self._health_seq = 0
        self._waiting_health: bytes | None = None
        self._slots_sent: dict[str, dict[str, Any]] = {}
        self._stopped_mid: Hashable | None = None
        self._audit_probe = sqlite3.connect(service.audit.db_path, check_same_thread=False)
        self._audit_version: int | None = None
        self._backlog = False
        self.stats = {"published": 0, "acked": 0, "refused": 0, "commands": 0}
        #: What keeps other processes from reporting for the same dock (composition sets it).
        self.lock: Any = None

    # --- topics -------------------------------------------------------------------

    def _topic(self, kind: Kind, name: str = "") -> str:
        return dock_topic(self.site, self.dock_id, kind, name)

    def _state(self, state: DockState, at: float) -> bytes:
        return encode(Kind.STATE, {"state": state.value, "boot": self.boot, "time": utc(at)})

    # --- life -----------------------------------------------------------------------

    def start(self) -> None:
        self._feed()  # on first use this fixes where events start: before anything can happen
        self.link.start(self._topic(Kind.STATE), lambda: self._state(DockState.LOST, self._clock()))
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Say ``stopped`` (retained) if the broker is there, then disconnect cleanly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)  # the goodbye waits at most 3 s for its ack
            if self._thread.is_alive():
                log.error("reporting did not stop in time; its lock stays held")
                return
        self._audit_probe.close()
        if self.lock is not None:
            self.lock.close()  # another reporter may start now
            self.lock = None

    def _run(self) -> None:
        next_feed = next_prune = 0.0
        next_health = self._clock()
        while not self._stop.is_set():
            self._guarded(self._drain, 0.2)
            now = self._clock()
            if now >= next_feed:
                next_feed = now + FEED_EVERY_S
                self._guarded(self._feed)
            if self._connected:
                self._guarded(self._pump, now)
                self._guarded(self._publish_slots, False)
            if now >= next_health:
                next_health = now + self.cfg.health_interval_s
                self._guarded(self._health, now)
            if now >= next_prune:
                next_prune = now + PRUNE_EVERY_S
                self._guarded(self.outbox.prune)
            self._guarded(self._flush_acks)
        self._guarded(self._goodbye)

    def _guarded(self, step: Callable[..., Any], *args: Any) -> None:
        """One failing step (a locked database, a bad message) must not end reporting."""
        try:
            step(*args)
        except Exception:
            log.exception("reporting step %s failed", getattr(step, "__name__", step))
            self._stop.wait(1.0)

    def _goodbye(self) -> None:
        self._feed()
        if self._connected:
            self._health(self._clock())  # the last word on this boot's events
            self._stopped_mid = self.link.publish(
                self._topic(Kind.STATE), self._state(DockState.STOPPED, self._clock()), retain=True
            )
            deadline = time.monotonic() + 3.0
            while self._stopped_mid is not None and time.monotonic() < deadline:
                self._drain(0.1)
        self._flush_acks()
        self.link.stop()

    # --- inbox ------------------------------------------------------------------------

    def _drain(self, wait: float) -> None:
        try:
            item = self.link.inbox.get(timeout=wait)
        except queue.Empty:
            return
        for _ in range(10_000):  # bounded: at most this many per turn
            self._handle(item)
            try:
                item = self.link.inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, item: tuple[Any, ...]) -> None:
        what = item[0]
        if what == "connected":
            self._on_connected()
        elif what == "disconnected":
            log.info("broker link down: %s (reconnecting)", item[1])  # warned if it stays
            self._connected = False
            self._inflight.clear()  # unacknowledged events go again on the next connection
            self._pump_after = 0
        elif what == "ack":
            self._on_ack(item[1], item[2], item[3])
        elif what == "message":
            self._on_message(item[1], item[2])

    def _on_connected(self) -> None:
        log.info("connected to broker %s:%s", self.cfg.host, self.cfg.broker_port)
        self._connected = True
        self._inflight.clear()
        self._pump_after = 0
        self.link.subscribe(command_filter(self.site, self.dock_id))
        self.link.subscribe(HQ_STATUS)
        self._announce()
        if self._waiting_health is not None:
            self._send(self._topic(Kind.HEALTH), self._waiting_health)
            self._waiting_health = None

    def _announce(self) -> None:
        """Birth, state and every slot: on each connection and when headquarters returns."""
        now = self._clock()
        birth = {
            "site": self.site,
            "dock": self.dock_id,
            "boot": self.boot,
            "time": utc(now),
            "started": utc(self.started),
            "software": self.software,
            "config_hash": self.config_hash,
            "slots": list(self.service.views),
            "policy": self.service.policy.name,
        }
        self._send(self._topic(Kind.BIRTH), encode(Kind.BIRTH, birth), retain=True)
        self._send(self._topic(Kind.STATE), self._state(DockState.READY, now), retain=True)
        self._publish_slots(True)

    def _send(self, topic: str, payload: bytes, retain: bool = False) -> Hashable | None:
        mid = self.link.publish(topic, payload, retain=retain)
        if mid is not None:
            self._inflight[mid] = None
            self.stats["published"] += 1
        return mid

    def _on_ack(self, mid: Hashable, ok: bool, reason: str) -> None:
        if mid == self._stopped_mid:
            self._stopped_mid = None
        row = self._inflight.pop(mid, None)
        if not ok:
            self.stats["refused"] += 1
            log.error("broker refused message %s (%s): check this dock's ACL", mid, reason)
            if row is not None:  # stays unsent; try again later
                self._paused_until = self._clock() + REFUSED_PAUSE_S
                self._pump_after = 0
            return
        self.stats["acked"] += 1
        if row is not None:
            self._acked.append(row)

    def _flush_acks(self) -> None:
        if self._acked:
            done, self._acked = self._acked, []
            self.outbox.mark_sent(done)

    # --- events -------------------------------------------------------------------------

    def _feed(self) -> None:
        # Cheap "did anyone write to the audit log?" first: on a quiet dock this is all
        # the feed costs (the snapshot reads open connections and parse JSON).
        version = self._audit_probe.execute("PRAGMA data_version").fetchone()[0]
        if version == self._audit_version and not self._backlog:
            return
        for _ in range(100):  # a long backlog goes over several turns
            if not feed(self.service.audit, self.outbox, self.boot, self._drift_bound):
                break
        else:
            self._backlog = True
            return
        # Only now: a feed that raised above leaves these as they were, to try again.
        self._audit_version = version
        self._backlog = False

    def _pump(self, now: float) -> None:
        self._flush_acks()  # what was acknowledged must not look pending below
        if now < self._paused_until:
            return
        in_flight = {r for r in self._inflight.values() if r is not None}
        room = WINDOW - len(in_flight)
        if room <= 0:
            return
        for row in self.outbox.pending(room + len(in_flight), self._pump_after):
            if room <= 0:
                break
            if row.id in in_flight:
                self._pump_after = max(self._pump_after, row.id)
                continue
            mid = self.link.publish(self._topic(Kind.EVENT, row.type), row.payload)
            if mid is None:
                return  # not sent: this row is the first of the next turn
            self._pump_after = max(self._pump_after, row.id)
            self._inflight[mid] = row.id
            self.stats["published"] += 1
            room -= 1

    # --- health and slots -------------------------------------------------------------------

    def _slot_summaries(self) -> list[dict[str, Any]]:
        out = []
        for slot_id, view in list(self.service.views.items()):
            state = self.service.slot_status[slot_id].state
            out.append(slot_summary(slot_id, str(state), view))
        return out

    def _publish_slots(self, force: bool) -> None:
        if not self._connected:
            return
        for summary in self._slot_summaries():
            slot_id = summary["slot"]
            if not force and self._slots_sent.get(slot_id) == summary:
                continue
            payload = encode(Kind.SLOT, {**summary, "time": utc(self._clock())})
            if self._send(self._topic(Kind.SLOT, slot_id), payload, retain=True) is not None:
                self._slots_sent[slot_id] = summary

    def _health(self, now: float) -> None:
        self._health_seq += 1
        pending = self.outbox.count_pending()
        if pending > WARN_PENDING:
            log.warning("%d events wait for the broker (none is dropped)", pending)
        dock = dock_health(self.state_dir, self.evidence_dir, now)
        dock |= {
            "outbox_pending": pending,
            "last_event": self.outbox.last_event(),
            "boots": self.outbox.recent_boots(),
        }
        body = {
            "boot": self.boot,
            "seq": self._health_seq,
            "time": utc(now),
            "dock": dock,
            "slots": self._slot_summaries(),
        }
        replication = self._replication_now(now)
        if replication is not None:
            body["replication"] = replication
        payload = encode(Kind.HEALTH, body)
        if self._connected and self._send(self._topic(Kind.HEALTH), payload) is not None:
            self._waiting_health = None
        else:
            self._waiting_health = payload  # coalesced: only the newest waits

    def _replication_now(self, now: float) -> dict[str, Any] | None:
        """The backlog for health; a queue that cannot be read now leaves it out (the
        rest of the health still goes) and says so in the log."""
        if self._replication is None:
            return None
        try:
            return self._replication(now)
        except (sqlite3.Error, OSError, KeyError, TypeError, ValueError) as exc:
            log.warning("replication backlog not reported in this health: %s", exc)
            return None

    # --- messages from headquarters -------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == HQ_STATUS:
            if hq_online(payload):
                self._announce()
            return
        try:
            address = parse_topic(topic)
        except ContractError as exc:
            log.warning("ignored message: %s", exc)
            return
        if address.kind is not Kind.CMD or address.dock != self.dock_id:
            return
        self._command(address.name, payload)

    def _command(self, name: str, payload: bytes) -> None:
        """Check, obey, audit and answer one command; nothing in it may stop reporting."""
        self.stats["commands"] += 1
        try:
            cmd = decode(Kind.CMD, payload)
        except ContractError as exc:
            digest = hashlib.sha256(payload).hexdigest()
            log.warning("command %s refused: %s", name, exc)
            self.service.audit.append(
                AuditKind.HQ_COMMAND,
                "hq:?",
                "",
                {"command": name, "accepted": False, "error": f"unreadable: {exc}"[:300],
                 "payload_sha256": digest},
            )  # fmt: skip
            return  # no id to answer to
        error: str | None = None
        result: dict[str, Any] = {}
        by = _printable(f"hq:{cmd['by']}")
        try:
            error = refusal(cmd, self._keys, self._clock())
            if error is None and (
                cmd["command"] != name or (cmd["site"], cmd["dock"]) != (self.site, self.dock_id)
            ):
                error = "not for this dock"
            if error is None and not self.outbox.first_sight(cmd["id"]):
                error = "replayed"
            args = arguments(cmd) if error is None else None
            if error is None and args is None:
                error = "bad arguments"
            if error is None and args is not None:
                error, result = self._obey(Command(cmd["command"]), args, by)
        except Exception as exc:  # a bug or a full disk: refuse, say so, keep reporting
            log.exception("command %s failed", cmd["id"])
            error = f"internal: {type(exc).__name__}"
        self.service.audit.append(
            AuditKind.HQ_COMMAND,
            by,
            _printable(str(cmd["args"].get("serial", ""))),
            {
                "id": _printable(cmd["id"]),
                "command": cmd["command"],
                "args": json.loads(_printable(json.dumps(cmd["args"], ensure_ascii=False))),
                "accepted": error is None,
                "error": error or "",
            },
        )
        reply: dict[str, Any] = {"id": cmd["id"], "ok": error is None, "time": utc(self._clock())}
        reply |= {"error": error} if error else {"result": result}
        try:
            self._send(self._topic(Kind.REPLY), encode(Kind.REPLY, reply))
        except (ValueError, UnicodeError) as exc:  # an id that cannot be sent back
            log.info("no reply to command %r: %s", _printable(cmd["id"]), exc)
        if error is None and cmd["command"] == Command.STATUS:
            self._announce()
            self._health(self._clock())

    def _obey(self, command: Command, args: dict[str, Any], by: str) -> tuple[str | None, dict]:
        if command is Command.STATUS:
            return None, {}
        if command is Command.RESEND:
            self._flush_acks()  # a late "sent" mark must not undo the resend
            n = self.outbox.resend(args["boot"], args["from_seq"], args["to_seq"])
            self._pump_after = 0
            return None, {"requeued": n}
        try:
            flagged = requests.call(
                self.service, REQUESTS[command], request_arguments(command, args), actor=by
            )
        except RequestError:
            return "unknown device", {}
        return None, dict(flagged.changes)


def _printable(text: str) -> str:
    """Text that can be stored and hashed: lone surrogates (never valid UTF-8) replaced."""
    return text.encode("utf-8", "replace").decode("utf-8")
