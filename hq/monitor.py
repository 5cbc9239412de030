"""The fleet monitor: the broker's messages into SQLite in batches, alerts on the way.

Paho's network thread does nothing but queue each message (no JSON, no SQL), so a
burst never stalls the connection. One writer thread drains the queue in batches (up
to ``batch_max`` messages or ``batch_window_s``), stores a batch in one transaction
together with the alerts it opens or closes, commits, and only then acknowledges its
QoS 1 messages (``manual_ack``): if dock-hq dies before a commit, the broker still holds
those messages for its persistent session and delivers them again; the events table's
primary key (site, dock, boot, seq) turns the second copy into a no-op. What a message
means for the database and its alerts is :mod:`hq.ingest`.
"""

from __future__ import annotations

import logging
import queue
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

from hq import alerts
from hq.alerts import Thresholds
from hq.commands import publish_command
from hq.config import BrokerSettings, mqtt_client
from hq.ingest import Batch, Inbound, Ingest
from hq.store import Store
from mqtt_contract import contract

log = logging.getLogger("hq.monitor")

ONLINE = contract.hq_status(online=True)
OFFLINE = contract.hq_status(online=False)
#: Within a batch window, wait this long for one more message before committing.
BATCH_GAP_S = 0.005
_LAG_SAMPLES = 10_000
_STOP = object()


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
        self._ingest = Ingest(self.thresholds, signing_key, name)
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
            "connected to broker %s:%s",
            self.broker.host,
            self.broker.effective_port,
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
        log.info("disconnected from the broker", extra={"reason": str(reason)})  # paho retries

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
        work = Batch(now=now)
        with store.transaction():
            for item in batch:
                self._ingest.apply(store, item, work)
            self._ingest.finish(store, work)
            opened = store.apply(work.decision, now)
        committed = time.time()
        self._ingest.committed(work)
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

    def _send_commands(self, work: Batch) -> None:
        """After the commit: a resend counts as asked only once it was published."""
        client = self._client
        if client is None:
            return
        for site, dock, command in work.commands:
            publish_command(client, site, dock, command)
        self._ingest.sent(work)

    def _tick(self) -> None:
        """Periodic rules (silence), asking again for events still missing (also of boots
        no message touches any more), and housekeeping, in their own small transaction."""
        store = self._store
        assert store is not None
        now = self.clock()
        th = self.thresholds
        work = Batch(now=now)
        try:
            with store.transaction():
                decision = alerts.silent_rule(store.docks_seen(), now, self._started_at, th)
                opened = store.apply(decision, now)
                store.prune_failures(now - 2 * th.failure_window_s)
                for key in store.boots_missing_events():
                    received, expected = store.boot_progress(*key)
                    if received < expected:
                        self._ingest.plan_resend(store, key, expected, now, work)
        except Exception:
            log.exception("periodic check failed")
            return
        self._send_commands(work)
        with self._stats_lock:
            self._counts["alerts_opened"] += len(opened)
