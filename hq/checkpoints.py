"""Does a dock's new audit checkpoint extend what it reported before? Pure.

A dock's audit log is a hash chain; a checkpoint is its size (``seq``) and head hash,
signed with the dock's key. Without the log itself, headquarters can still hold the dock
to two rules that every honest log keeps and a cut or rewritten one breaks:

* the head at a given size never changes, and
* the size never goes back.

Each checkpoint event also names the checkpoint before it in the dock's log
(``previous``: seq and head), so headquarters learns which stretches hold no checkpoint:
a later checkpoint inside such a stretch, or one whose previous head differs from the
one headquarters holds at that seq, cannot come from the same log. Events may arrive
late and out of order (``resend``), so "goes back" is judged by the log, not by arrival:
a checkpoint below the newest one headquarters holds is a late one only if it fits the
chain of ``previous`` links, or, where those do not decide, if the dock signed it no
later than the next checkpoint above it. What headquarters accepted is what
``dock-hq checkpoint`` gives the dock for ``dock audit verify --against``.

Limits: entries after the newest checkpoint headquarters received can be cut unnoticed
(they were never vouched for outside the dock); a dock that holds its key (root on it)
can sign anything, but cannot make headquarters forget what it already holds; the
"signed no later" test trusts the dock's clock not to have been set back between two
checkpoints that also arrived out of order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hq.alerts import AlertKind
from mqtt_contract.contract import (
    GENESIS,
    ContractError,
    checkpoint_signed_bytes,
    key_fingerprint,
    parse_utc,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class Claim:
    """One checkpoint as a dock reported it (an ``audit.checkpoint`` event's data)."""

    seq: int
    head: str
    time: str  # as signed
    t: float  # ``time`` in epoch seconds, to compare
    prev_seq: int | None = None  # absent from docks before the field existed
    prev_head: str | None = None
    public_key: str | None = None
    signature: str | None = None

    @property
    def signed(self) -> bool:
        return self.public_key is not None and self.signature is not None


def claim_of(data: Any, time: str) -> Claim:
    """The claim in an ``audit.checkpoint`` event's ``data`` (``time``: the event's,
    used when the data has none); ContractError says what is wrong."""
    if not isinstance(data, dict):
        raise ContractError("audit.checkpoint: data is not an object")
    seq, head = data.get("seq"), data.get("head")
    if type(seq) is not int or seq < 1 or not isinstance(head, str) or not _HEX64.fullmatch(head):
        raise ContractError("audit.checkpoint: seq must be >= 1 and head 64 hex digits")
    signed_time = data.get("time", time)
    if not isinstance(signed_time, str):
        raise ContractError("audit.checkpoint: time is not text")
    t = parse_utc(signed_time)
    prev_seq = prev_head = None
    previous = data.get("previous")
    if previous is not None:
        if not isinstance(previous, dict):
            raise ContractError("audit.checkpoint: previous is not an object")
        prev_seq, prev_head = previous.get("seq"), previous.get("head")
        if type(prev_seq) is not int or prev_seq < 0 or prev_seq >= seq:
            raise ContractError("audit.checkpoint: previous.seq must be 0 or more and below seq")
        if not isinstance(prev_head, str) or not _HEX64.fullmatch(prev_head):
            raise ContractError("audit.checkpoint: previous.head must be 64 hex digits")
        if prev_seq == 0 and prev_head != GENESIS:
            raise ContractError("audit.checkpoint: previous.head of seq 0 must be 64 zeros")
    key, sig = data.get("public_key"), data.get("signature")
    if (key is None) != (sig is None):
        raise ContractError("audit.checkpoint: public_key and signature go together")
    if key is not None and not (isinstance(key, str) and isinstance(sig, str)):
        raise ContractError("audit.checkpoint: public_key and signature must be text")
    return Claim(seq, head, signed_time, t, prev_seq, prev_head, key, sig)


@dataclass(frozen=True)
class Known:
    """What headquarters holds around a claim: accepted checkpoints of the same dock."""

    #: The accepted checkpoint at the claim's seq.
    same: Claim | None = None
    #: The accepted checkpoint at the claim's previous seq.
    prev: Claim | None = None
    #: An accepted checkpoint strictly between the claim's previous seq and its seq.
    inside: Claim | None = None
    #: The accepted checkpoint with the smallest seq above the claim's.
    above: Claim | None = None
    #: The public key (hex) of the dock's accepted signed checkpoints, if any.
    key: str | None = None
    #: The claim's previous is a checkpoint headquarters rejected.
    follows_rejected: bool = False


def known_from(
    accepted: Iterable[Claim], rejected: Iterable[tuple[int, str]], claim: Claim
) -> Known:
    """:class:`Known` from every checkpoint held (what the store finds by index)."""
    held = sorted(accepted, key=lambda c: c.seq)
    by_seq = {c.seq: c for c in held}
    lo = claim.prev_seq
    inside = None if lo is None else next((c for c in held if lo < c.seq < claim.seq), None)
    return Known(
        same=by_seq.get(claim.seq),
        prev=None if lo is None else by_seq.get(lo),
        inside=inside,
        above=next((c for c in held if c.seq > claim.seq), None),
        key=next((c.public_key for c in held if c.public_key is not None), None),
        follows_rejected=lo is not None and (lo, claim.prev_head) in set(rejected),
    )


@dataclass(frozen=True)
class Verdict:
    status: str  # ACCEPTED, DUPLICATE or REJECTED
    kind: AlertKind | None = None
    detail: str = ""


def _short(h: str | None) -> str:
    return (h or "?")[:16]


def _fp(key: str) -> str:
    return key_fingerprint(bytes.fromhex(key)) if _HEX64.fullmatch(key) else "?"


def signature_problem(dock: str, claim: Claim) -> str | None:
    """Why the claim's signature does not hold, or None (also for an unsigned claim)."""
    if not claim.signed:
        return None
    key, sig = str(claim.public_key), str(claim.signature)
    if not _HEX64.fullmatch(key) or not _HEX128.fullmatch(sig):
        return "its public key or signature is not lowercase hex of the right length"
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key)).verify(
            bytes.fromhex(sig), checkpoint_signed_bytes(dock, claim.seq, claim.head, claim.time)
        )
    except InvalidSignature:
        return f"its signature does not verify with the key it names ({_fp(key)})"
    return None


def judge(dock: str, claim: Claim, known: Known) -> Verdict:
    """Whether ``claim`` extends what headquarters holds of ``dock``'s audit log."""
    s = claim.seq
    bad = signature_problem(dock, claim)
    if bad is None and known.key is not None:
        if not claim.signed:
            bad = "it is not signed, though the dock signed its earlier checkpoints"
        elif claim.public_key != known.key:
            bad = (
                f"it is signed by key {_fp(str(claim.public_key))}, not by the dock's key "
                f"{_fp(known.key)} of its earlier checkpoints"
            )
    if bad is not None:
        return Verdict(REJECTED, AlertKind.AUDIT_BAD_CHECKPOINT, f"checkpoint {s}: {bad}")
    if known.same is not None:
        if known.same.head == claim.head:
            return Verdict(DUPLICATE)
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_FORK,
            f"entry {s} was {_short(known.same.head)} (signed {known.same.time}), the dock "
            f"now signs {_short(claim.head)} (signed {claim.time}): the log was rewritten",
        )
    ps = claim.prev_seq
    if known.prev is not None and known.prev.head != claim.prev_head:
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_FORK,
            f"checkpoint {s} follows entry {ps} as {_short(claim.prev_head)}, headquarters "
            f"holds {_short(known.prev.head)} there: the log was rewritten",
        )
    if known.inside is not None:
        i = known.inside
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_BACKWARDS,
            f"checkpoint {s} follows checkpoint {ps}, but headquarters holds checkpoint "
            f"{i.seq} between them (signed {i.time}): the log was cut back before entry "
            f"{i.seq} and grew again",
        )
    if known.follows_rejected:
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_FORK,
            f"checkpoint {s} continues checkpoint {ps}, which headquarters rejected",
        )
    a = known.above
    if a is None:
        return Verdict(ACCEPTED)  # the newest: it extends what is held
    if a.prev_seq == s:
        if a.prev_head == claim.head:
            return Verdict(ACCEPTED)  # a late one the next checkpoint already vouched for
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_FORK,
            f"checkpoint {a.seq} (signed {a.time}) follows entry {s} as "
            f"{_short(a.prev_head)}, the dock now signs {_short(claim.head)} there: the log "
            "was rewritten",
        )
    if a.prev_seq is not None and a.prev_seq < s:
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_BACKWARDS,
            f"checkpoint {s} (signed {claim.time}) lies between checkpoints {a.prev_seq} and "
            f"{a.seq}, which have none between them: the log went back below entry {a.seq}",
        )
    if claim.t > a.t:
        return Verdict(
            REJECTED,
            AlertKind.AUDIT_BACKWARDS,
            f"checkpoint {s} was signed {claim.time}, after checkpoint {a.seq} (signed "
            f"{a.time}): the log went back from entry {a.seq} or beyond to entry {s}",
        )
    return Verdict(ACCEPTED)  # a late one, older than what is held above it
