"""Which of the dock's guarantees a docked recorder allows, said the same way for every driver.

``dock probe``, ``dock status`` and the status JSON the site reads show them: a guarantee
the device cannot give is stated here, never made up elsewhere (issue 14, section 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from firmware_protocol.messages import MsgType


@dataclass(frozen=True)
class Guarantees:
    driver: str
    #: "capture" (the recorder hashed at capture) or "offload" (first read at the dock).
    hash: str
    #: "erase" (after verification) or "keep" (policy or device).
    erase: str
    #: "set", "read" or "none".
    clock: str
    #: "proven" (cryptographic) or "claimed".
    identity: str
    #: "reported" or "unknown".
    battery: str
    #: How a mass-storage volume is read: "mount" or "fat-library" (UMS only).
    read_via: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


def guarantees_of(client: Any) -> dict[str, str]:
    """What ``client`` (a protocol session, or a driver stating its own) allows now."""
    own = getattr(client, "guarantees", None)
    if isinstance(own, Guarantees):
        return own.as_dict()
    return Guarantees(
        driver="protocol",
        hash="capture",
        erase="erase" if client.why_not(MsgType.ERASE) is None else "keep",
        clock="set" if client.why_not(MsgType.SET_TIME) is None else "read",
        identity="proven" if getattr(client, "authenticated", False) else "claimed",
        battery="reported",
    ).as_dict()
