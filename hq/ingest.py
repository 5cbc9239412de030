"""What each fleet message does to headquarters' database: stored, judged, alerted on.

Split from :mod:`hq.monitor`, which owns the broker connection, the queue, batching and
acknowledgements; here is only the meaning of a message, with no MQTT and no threads,
so it runs the same in a test, a benchmark or the monitor's writer thread.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hq import alerts, checkpoints
from hq.alerts import Decision, Thresholds
from hq.commands import sign_command
from hq.store import Store
from mqtt_contract import contract

log = logging.getLogger("hq.monitor")  # the name its log lines have always had

#: Ask a dock again for events still missing after this long.
RESEND_RETRY_S = 300.0
#: Ask this many times for the same missing events, then leave it to the open alert.
RESEND_MAX_ATTEMPTS = 5
#: At most this many seq ranges asked for per boot at a time.
RESEND_MAX_RANGES = 20
#: Boots a health message may name with their last seq (the dock sends its latest 10).
MAX_BOOTS_NOTED = 20

BootKey = tuple[str, str, str]  # (site, dock, boot)


@dataclass
class Inbound:
    """One message as paho handed it over, stamped with when it arrived."""

    topic: str
    payload: bytes | bytearray  # as paho types it
    mid: int
    qos: int
    generation: int  # which connection it came on: its mid means nothing on another
    received: float  # time.time()
    retained: bool = False  # a retained copy: its time says when it was published first


@dataclass
class Batch:
    """What one batch collects on its way through one transaction."""

    now: float
    decision: Decision = field(default_factory=Decision)
    new_events: dict[BootKey, tuple[int, int]] = field(default_factory=dict)
    boots: set[BootKey] = field(default_factory=set)
    commands: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    asked: dict[BootKey, tuple[int, float, int]] = field(default_factory=dict)
    noted: dict[BootKey, int] = field(default_factory=dict)
    published: list[float] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    ignored: int = 0


class Ingest:
    """Applies messages to a :class:`Store` inside the caller's transaction.

    What it remembers across batches (boots noted, resends asked) is updated only by
    :meth:`committed` and :meth:`sent`, so a batch that fails and is redone sees the
    same memory it saw the first time.
    """

    def __init__(
        self, thresholds: Thresholds, signing_key: Ed25519PrivateKey | None, name: str
    ) -> None:
        self.thresholds = thresholds
        self.signing_key = signing_key
        self.name = name
        #: (site, dock, boot) -> the highest last seq noted from health (saves writes)
        self.noted: dict[BootKey, int] = {}
        #: (site, dock, boot) -> (highest seq asked for, when, how many times)
        self.resend_asked: dict[BootKey, tuple[int, float, int]] = {}

    def committed(self, work: Batch) -> None:
        """The batch's transaction committed: remember what it noted."""
        self.noted.update(work.noted)

    def sent(self, work: Batch) -> None:
        """The batch's commands were published: a resend counts as asked only now."""
        self.resend_asked.update(work.asked)

    def apply(self, store: Store, item: Inbound, work: Batch) -> None:
        """One message; a malformed one is counted and logged, never raised."""
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

    def finish(self, store: Store, work: Batch) -> None:
        """After the batch's messages: count new events per boot, judge what is missing."""
        for key, (count, max_seq) in work.new_events.items():
            store.add_received(*key, count, max_seq)
        for key in work.boots:
            received, expected = store.boot_progress(*key)
            work.decision.extend(alerts.missing_rule(*key, received, expected))
            if received < expected:
                self.plan_resend(store, key, expected, work.now, work)

    def _dispatch(
        self,
        store: Store,
        address: contract.Address,
        payload: dict[str, Any],
        item: Inbound,
        work: Batch,
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
                work.decision.extend(alerts.replication_rule(site, dock, payload))
                self._note_last_event(store, site, dock, payload["dock"], work)
        elif kind is contract.Kind.EVENT:
            self._event(store, site, dock, payload, item, work)

    def _event(
        self, store: Store, site: str, dock: str, event: dict[str, Any], item: Inbound, work: Batch
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
        self, store: Store, site: str, dock: str, part: dict[str, Any], work: Batch
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
            if max(self.noted.get(key, 0), work.noted.get(key, 0)) >= seq:
                continue  # nothing new about this boot: no write, no check
            work.noted[key] = seq  # remembered once committed (a failed batch is redone)
            store.note_last_event(site, dock, boot, seq)
            work.boots.add(key)

    def plan_resend(
        self, store: Store, key: BootKey, expected: int, now: float, work: Batch
    ) -> None:
        """Sign a ``resend`` for the boot's missing ranges, unless asked too recently or
        too often (sent by the caller after its commit)."""
        if self.signing_key is None:
            return
        asked = self.resend_asked.get(key)
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
