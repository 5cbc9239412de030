"""The fleet monitor: the broker's messages into SQLite in batches, alerts on the way.

Paho's network thread does nothing but queue each message (no JSON, no SQL), so a
burst never stalls the connection. One writer thread drains the queue in batches (up
to ``batch_max`` messages or ``batch_window_s``), stores a batch in one transaction
together with the alerts it opens or closes, commits, and only then acknowledges its
QoS 1 messages (``manual_ack``): if dock-hq dies before a commit, the broker still holds
those messages for its persistent session and delivers them again; the events table's
primary key (site, dock, boot, seq) turns the second copy into a no-op.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hq import alerts, checkpoints
from hq.alerts import Decision, Thresholds
from hq.commands import publish_command, sign_command
from hq.config import BrokerSettings, mqtt_client
from hq.store import Store
from mqtt_contract import contract

log = logging.getLogger("hq.monitor")

ONLINE = contract.hq_status(online=True)
OFFLINE = contract.hq_status(online=False)
#: Ask a dock again for events still missing after this long.
RESEND_RETRY_S = 300.0
#: Ask this many times for the same missing events, then leave it to the open alert.
RESEND_MAX_ATTEMPTS = 5
#: At most this many seq ranges asked for per boot at a time.
RESEND_MAX_RANGES = 20
#: Boots a health message may name with their last seq (the dock sends its latest 10).
MAX_BOOTS_NOTED = 20
#: Within a batch window, wait this long for one more message before committing.
BATCH_GAP_S = 0.005
_LAG_SAMPLES = 10_000
_STOP = object()


@dataclass
class Inbound:
    """One message as paho handed it over, stamped with when it arrived."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which connection it came on: its mid means nothing on another
    received: float  # time.time()
    retained: bool = False  # a retained copy: its time says when it was published first


@dataclass
class _Lag:
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=_LAG_SAMPLES))
    max: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.samples.append(value)
        self.max = max(self.max, value)
        self.total += value
        self.count += 1

    def summary(self) -> dict[str, float | int | None]:
        recent = sorted(self.samples)
        if not recent:
            return {"count": 0, "last": None, "mean": None, "p50": None, "p95": None, "max": None}
        return {
            "count": self.count,
            "last": self.samples[-1],
            "mean": self.total / self.count,
            "p50": recent[len(recent) // 2],
            "p95": recent[min(len(recent) - 1, int(len(recent) * 0.95))],
            "max": self.max,
        }


class Monitor:
    """Subscribes to the fleet, keeps ``db_path`` up to date and raises alerts.

    ``signing_key``: when given, events noticed missing are asked for again with a
    signed ``resend`` command. ``clock`` (epoch seconds) is for tests.
    """

    def __init__(
        self,
        db_path: str,
        broker: BrokerSettings,
        *,
        name: str = "main",
        thresholds: Thresholds | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        session_expiry_s: int = 7 * 24 * 3600,
        batch_max: int = 2000,
        batch_window_s: float = 0.1,
        tick_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        contract.check_id("hq name", name)
        self.db_path = db_path
        self.broker = broker
        self.name = name
        self.client_id = f"hq-{name}"
        self.thresholds = thresholds or Thresholds()
        self.signing_key = signing_key
        self.session_expiry_s = session_expiry_s
        self.batch_max = batch_max
        self.batch_window_s = batch_window_s
        self.tick_s = tick_s or min(10.0, self.thresholds.health_interval_s / 4)
        self.clock = clock
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()  # the fleet filter is in place
        self._stopping = threading.Event()
        self._stats_lock = threading.Lock()
        self._counts = dict.fromkeys(
            (
                "committed",
                "duplicates",
                "rejected",
                "ignored",
                "batches",
                "alerts_opened",
                "commands_sent",
                "connects",
            ),
            0,
        )
        self._received = 0
        self._lag_receive = _Lag()
        self._lag_publish = _Lag()
        #: (site, dock, boot) -> the highest last seq noted from health (saves writes)
        self._noted: dict[tuple[str, str, str], int] = {}
        #: (site, dock, boot) -> (highest seq asked for, when, how many times)
        self._resend_asked: dict[tuple[str, str, str], tuple[int, float, int]] = {}
        self._store: Store | None = None
        self._client: mqtt.Client | None = None
        self._writer: threading.Thread | None = None
        self._started_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Monitor:
        """Open the database, start the writer, and connect (in the background, with
        back-off retries: a broker that is down now is tried again)."""
        self._store = Store(self.db_path)
        self._started_at = self.clock()
        self._writer = threading.Thread(target=self._write_loop, name="hq-writer", daemon=True)
        self._writer.start()
        client = mqtt_client(self.broker, self.client_id, manual_ack=True)
        client.will_set(contract.HQ_STATUS, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry_s
        # Let the broker have many messages in flight to us: we ack a batch at a time.
        props.ReceiveMaximum = 65535
        client.connect_async(
            self.broker.host,
            self.broker.effective_port,
            keepalive=self.broker.keepalive_s,
            clean_start=False,
            properties=props,
        )
        client.loop_start()
        self._client = client
        log.info(
            "monitor started",
            extra={"client_id": self.client_id, "db": self.db_path, "broker": self.broker.host},
        )
        return self

    def wait_subscribed(self, timeout_s: float) -> bool:
        """True once connected with the fleet subscription in place (for tests and
        tools: a dock's message sent before that reaches no session of ours)."""
        return self._subscribed.wait(timeout_s) and self._connected.is_set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Commit and acknowledge what was queued, publish ``offline``, disconnect."""
        if self._writer is not None:
            self._stopping.set()
            self._queue.put(_STOP)
            self._writer.join(timeout_s)
            self._writer = None
        client = self._client
        if client is not None:
            if self._connected.is_set():
                info = client.publish(contract.HQ_STATUS, OFFLINE, qos=1, retain=True)
                info.wait_for_publish(timeout_s)
            client.disconnect()
            client.loop_stop()
            self._client = None
        if self._store is not None:
            self._store.close()
            self._store = None
        log.info("monitor stopped", extra=self.stats()["counts"])

    def stats(self) -> dict[str, Any]:
        """Counters and lags: ``lag_receive_s`` from arrival to commit, ``lag_publish_s``
        from the payload's time (the dock's clock) to commit; summaries of the last
        10,000 messages (p50/p95) and since start (mean, max)."""
        with self._stats_lock:
            return {
                "connected": self._connected.is_set(),
                "queued": self._queue.qsize(),
                "counts": {"received": self._received, **self._counts},
                "lag_receive_s": self._lag_receive.summary(),
                "lag_publish_s": self._lag_publish.summary(),
            }

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the connection", extra={"reason": str(reason)})
            return
        self._generation += 1
        client.subscribe(contract.FLEET_FILTER, options=SubscribeOptions(qos=1))
        client.publish(contract.HQ_STATUS, ONLINE, qos=1, retain=True)
        with self._stats_lock:
            self._counts["connects"] += 1
        self._connected.set()
        log.info(
            "connected",
            extra={"session_present": bool(flags.session_present), "client_id": self.client_id},
        )

    def _on_subscribe(self, _c: Any, _u: Any, _mid: int, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("fleet subscription refused", extra={"reason": str(reasons[0])})
            return
        self._subscribed.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._generation += 1  # acks of messages from this connection are void now
        self._connected.clear()
        self._subscribed.clear()
        log.warning("disconnected", extra={"reason": str(reason)})

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._received += 1  # only this thread writes it
        self._queue.put(
            Inbound(
                msg.topic, msg.payload, msg.mid, msg.qos, self._generation, time.time(), msg.retain
            )
        )

    # ------------------------------------------------------------------ writer thread

    def _write_loop(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        stopping = False
        while not stopping:
            wait = max(0.0, next_tick - time.monotonic())
            batch, stopping = self._take_batch(wait)
            if batch:
                self._commit_with_retry(batch)
            if time.monotonic() >= next_tick and not stopping:
                self._tick()
                next_tick = time.monotonic() + self.tick_s

    def _take_batch(self, wait_s: float) -> tuple[list[Inbound], bool]:
        batch: list[Inbound] = []
        try:
            first = self._queue.get(timeout=wait_s)
        except queue.Empty:
            return batch, False
        if first is _STOP:
            return batch, True
        batch.append(first)
        until = time.monotonic() + self.batch_window_s
        while len(batch) < self.batch_max and time.monotonic() < until:
            try:
                # A few ms more fill the batch under load (one fsync per batch is the
                # cost that counts); when the fleet is quiet it only adds those ms.
                item = self._queue.get(timeout=BATCH_GAP_S)
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit_with_retry(self, batch: list[Inbound]) -> None:
        """A database error (disk full, locked) leaves the batch unacknowledged: retry it
        until it commits, so nothing the broker gave us is lost."""
        delay = 0.5
        while True:
            try:
                self._commit(batch)
                return
            except Exception:
                if self._stopping.is_set():
                    log.error("batch left unacknowledged at stop", extra={"size": len(batch)})
                    return  # the broker delivers it again to the next run
                log.exception("batch not committed; retrying", extra={"size": len(batch)})
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)

    def _commit(self, batch: list[Inbound]) -> None:
        store = self._store
        assert store is not None
        now = self.clock()
        work = _Batch(now=now)
        with store.transaction():
            for item in batch:
                self._apply(store, item, work)
            decision = work.decision
            for key, (count, max_seq) in work.new_events.items():
                store.add_received(*key, count, max_seq)
            for key in work.boots:
                received, expected = store.boot_progress(*key)
                decision.extend(alerts.missing_rule(*key, received, expected))
                if received < expected:
                    self._plan_resend(store, key, expected, now, work)
            opened = store.apply(decision, now)
        committed = time.time()
        self._noted.update(work.noted)
        generation = self._generation
        client = self._client
        for item in batch:
            if item.qos > 0 and item.generation == generation and client is not None:
                client.ack(item.mid, item.qos)
        self._send_commands(work)
        for alert_id in opened:
            log.warning("alert opened", extra={"alert_id": alert_id})
        with self._stats_lock:
            c = self._counts
            c["committed"] += len(batch)
            c["duplicates"] += work.duplicates
            c["rejected"] += work.rejected
            c["ignored"] += work.ignored
            c["batches"] += 1
            c["alerts_opened"] += len(opened)
            c["commands_sent"] += len(work.commands)
            for item in batch:
                self._lag_receive.add(committed - item.received)
            for published in work.published:
                self._lag_publish.add(committed - published)

    def _apply(self, store: Store, item: Inbound, work: _Batch) -> None:
        try:
            address = contract.parse_topic(item.topic)
            if address.kind is contract.Kind.CMD:
                work.ignored += 1  # our own commands, seen through the fleet filter
                return
            payload = contract.decode(address.kind, item.payload)
            # A retained copy is as old as its first publication; a Will's time is when
            # the dock connected: neither says how far behind headquarters is.
            if not item.retained and address.kind is not contract.Kind.STATE:
                work.published.append(contract.parse_utc(payload["time"]))
            self._dispatch(store, address, payload, item, work)
        except contract.ContractError as exc:
            work.rejected += 1
            log.warning(
                "malformed message ignored",
                extra={"topic": item.topic, "error": str(exc), "payload": item.payload[:200]},
            )
        except sqlite3.Error:
            raise  # the database, not the message: the batch is retried
        except Exception:
            # A message this code cannot handle must not block every later one.
            work.rejected += 1
            log.exception("message not understood; ignored", extra={"topic": item.topic})

    def _dispatch(
        self,
        store: Store,
        address: contract.Address,
        payload: dict[str, Any],
        item: Inbound,
        work: _Batch,
    ) -> None:
        site, dock, now = address.site, address.dock, work.now
        kind = address.kind
        if kind is contract.Kind.STATE:
            store.set_state(site, dock, payload, now)
            work.decision.extend(alerts.state_rule(site, dock, payload))
        elif kind is contract.Kind.BIRTH:
            store.set_birth(site, dock, payload, now)
        elif kind is contract.Kind.SLOT:
            store.set_slot(site, dock, payload, now)
        elif kind is contract.Kind.REPLY:
            store.record_reply(site, dock, payload)
        elif kind is contract.Kind.HEALTH:
            if store.set_health(site, dock, payload, now):
                work.decision.extend(alerts.health_rule(site, dock, payload, self.thresholds))
                self._note_last_event(store, site, dock, payload["dock"], work)
        elif kind is contract.Kind.EVENT:
            self._event(store, site, dock, payload, item, work)

    def _event(
        self, store: Store, site: str, dock: str, event: dict[str, Any], item: Inbound, work: _Batch
    ) -> None:
        if not store.insert_event(site, dock, event, item.received):
            work.duplicates += 1
            return
        site, dock, boot, seq = contract.event_key(site, dock, event)
        key = (site, dock, boot)
        count, max_seq = work.new_events.get(key, (0, 0))
        work.new_events[key] = (count + 1, max(max_seq, seq))
        work.boots.add(key)
        work.decision.extend(alerts.event_rule(site, dock, event))
        if event["type"] == contract.EventType.AUDIT_CHECKPOINT:
            work.decision.extend(self._checkpoint(store, site, dock, event, work.now))
        failure = alerts.failure_of(event)
        if failure is not None:
            th = self.thresholds
            t = contract.parse_utc(event["time"])
            n = store.count_failure(site, dock, failure[0], failure[1], t, th.failure_window_s)
            work.decision.extend(alerts.failure_rule(site, dock, *failure, n, th))

    def _checkpoint(
        self, store: Store, site: str, dock: str, event: dict[str, Any], now: float
    ) -> alerts.Decision:
        """Hold the dock to its audit log's checkpoints: a new one must extend the last."""
        decision = alerts.Decision()
        try:
            claim = checkpoints.claim_of(event["data"], event["time"])
        except contract.ContractError as exc:
            decision.raise_(
                site, dock, alerts.AlertKind.AUDIT_BAD_CHECKPOINT, "",
                f"unreadable checkpoint (event {event['boot']}/{event['seq']}): {exc}",
            )  # fmt: skip
            return decision
        verdict = checkpoints.judge(dock, claim, store.checkpoints_known(site, dock, claim))
        if verdict.status != checkpoints.DUPLICATE:
            accepted = verdict.status == checkpoints.ACCEPTED
            store.add_checkpoint(site, dock, claim, accepted, now, event["boot"], event["seq"])
        if verdict.kind is not None:
            log.error(
                "audit checkpoint rejected",
                extra={"site": site, "dock": dock, "seq": claim.seq, "why": verdict.detail},
            )
            decision.raise_(site, dock, verdict.kind, "", verdict.detail)
        return decision

    def _note_last_event(
        self, store: Store, site: str, dock: str, part: dict[str, Any], work: _Batch
    ) -> None:
        """The dock's newest queued event counts as expected only once its outbox is empty:
        before that, events not yet received are merely not yet sent."""
        if part.get("outbox_pending") != 0:
            return
        # The newest event, and the last of each recent boot: events lost at the very end
        # of an earlier boot show up only in the latter.
        boots = part.get("boots")
        lasts = [
            part.get("last_event"),
            *(boots[:MAX_BOOTS_NOTED] if isinstance(boots, list) else []),
        ]
        for last in lasts:
            if not isinstance(last, dict):
                continue
            boot, seq = last.get("boot"), last.get("seq")
            if not (isinstance(boot, str) and type(seq) is int and seq > 0):
                continue
            key = (site, dock, boot)
            if max(self._noted.get(key, 0), work.noted.get(key, 0)) >= seq:
                continue  # nothing new about this boot: no write, no check
            work.noted[key] = seq  # remembered once committed (a failed batch is redone)
            store.note_last_event(site, dock, boot, seq)
            work.boots.add(key)

    def _plan_resend(
        self, store: Store, key: tuple[str, str, str], expected: int, now: float, work: _Batch
    ) -> None:
        if self.signing_key is None:
            return
        asked = self._resend_asked.get(key)
        if asked is not None and asked[0] >= expected:
            if now - asked[1] < RESEND_RETRY_S:
                return
            if asked[2] >= RESEND_MAX_ATTEMPTS:
                return  # the dock no longer has them (kept 30 days): the alert stays open
        attempts = asked[2] + 1 if asked is not None and asked[0] >= expected else 1
        site, dock, boot = key
        for first, last in store.gaps(site, dock, boot, expected, RESEND_MAX_RANGES):
            command = sign_command(
                self.signing_key,
                contract.Command.RESEND,
                {"boot": boot, "from_seq": first, "to_seq": last},
                f"dock-hq {self.name}",
                site=site,
                dock=dock,
                now=now,
            )
            store.record_command(site, dock, command, now)
            work.commands.append((site, dock, command))
            work.asked[key] = (expected, now, attempts)
            log.info(
                "asking for missing events",
                extra={"site": site, "dock": dock, "boot": boot, "from": first, "to": last},
            )

    def _send_commands(self, work: _Batch) -> None:
        """After the commit: a resend counts as asked only once it was published."""
        client = self._client
        if client is None:
            return
        for site, dock, command in work.commands:
            publish_command(client, site, dock, command)
        self._resend_asked.update(work.asked)

    def _tick(self) -> None:
        """Periodic rules (silence), asking again for events still missing (also of boots
        no message touches any more), and housekeeping, in their own small transaction."""
        store = self._store
        assert store is not None
        now = self.clock()
        th = self.thresholds
        work = _Batch(now=now)
        try:
            with store.transaction():
                decision = alerts.silent_rule(store.docks_seen(), now, self._started_at, th)
                opened = store.apply(decision, now)
                store.prune_failures(now - 2 * th.failure_window_s)
                for key in store.boots_missing_events():
                    received, expected = store.boot_progress(*key)
                    if received < expected:
                        self._plan_resend(store, key, expected, now, work)
        except Exception:
            log.exception("periodic check failed")
            return
        self._send_commands(work)
        with self._stats_lock:
            self._counts["alerts_opened"] += len(opened)


@dataclass
class _Batch:
    """What one batch collects on its way through :meth:`Monitor._commit`."""

    now: float
    decision: Decision = field(default_factory=Decision)
    new_events: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)
    boots: set[tuple[str, str, str]] = field(default_factory=set)
    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    asked: dict[tuple[str, str, str], tuple[int, float, int]] = field(default_factory=dict)
    noted: dict[tuple[str, str, str], int] = field(default_factory=dict)
    published: list[float] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0
