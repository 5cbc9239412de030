"""One look at one recorder: identity, status and footage, as a plain report."""

from __future__ import annotations

from typing import Any

from dock.devices.guarantees import guarantees_of
from dock.devices.recorder_client import RecorderClient
from dock.domain.interfaces import Transport
from dock.support.text import shown
from firmware_protocol.messages import Capability, FaultFlag


def probe(transport: Transport, secret: bytes | None = None, timeout: float = 5.0) -> dict:
    """Handshake, optionally authenticate, read status and the recording list.

    Raises LinkError, RecorderRefused or AuthenticationFailed (see recorder_client).
    """
    with RecorderClient(transport, timeout=timeout) as client:
        ident = client.open(timeout=timeout)
        if secret is not None:
            client.authenticate(secret)
        status = client.status()
        recordings = client.list_recordings()
        guarantees = guarantees_of(client)
    report: dict[str, Any] = {
        "serial": ident.serial,
        "model": ident.model,
        "vendor": ident.vendor,
        "firmware": ident.firmware,
        "protocol_version": ident.protocol_version,
        "capabilities": [c.name.lower() for c in Capability if c.name and c in ident.capabilities],
        "enrolled": ident.enrolled,
        "driver": guarantees["driver"],
        "guarantees": guarantees,
        "authenticated": client.authenticated,
        "battery_percent": status.battery_percent,
        "charging": status.charging,
        "battery_health_percent": status.battery_health_percent,
        "battery_cycles": status.battery_cycles,
        "battery_temp_c": status.battery_temp_c,
        "storage_total_bytes": status.storage_total_bytes,
        "storage_free_bytes": status.storage_free_bytes,
        "recording": status.recording,
        "clock_offset_s": status.clock_offset_s,
        "fault_flags": status.fault_flags,
        "faults": [
            f.name.lower() for f in FaultFlag if f.name and f in FaultFlag(status.fault_flags)
        ],
        "officer_id": status.officer_id,
        "recording_count": len(recordings),
        "recordings": [
            {
                "id": r.id,
                "start_ms": r.start_ms,
                "end_ms": r.end_ms,
                "size": r.size,
                "sha256": r.sha256.hex(),
                "signed": r.signature is not None,
                "flags": r.flags,
            }
            for r in recordings
        ],
    }
    return report


def describe(r: dict[str, Any]) -> str:
    """The human-readable form of a probe report (the recorder's texts escaped)."""
    gib = 1 << 30
    health = r["battery_health_percent"]
    lines = [
        f"recorder   {shown(r['serial'])}  ({shown(r['vendor'])} {shown(r['model'])}, "
        f"firmware {shown(r['firmware'])})",
        f"protocol   v{r['protocol_version']}  capabilities: {', '.join(r['capabilities'])}",
        f"enrolled   {'yes' if r['enrolled'] else 'no'}"
        f"{'  (authenticated)' if r['authenticated'] else ''}",
        f"battery    {r['battery_percent']} %{'  charging' if r['charging'] else ''}"
        + (f"  health {health} %, {r['battery_cycles']} cycles" if health is not None else ""),
        f"storage    {r['storage_free_bytes'] / gib:.1f} GiB free of "
        f"{r['storage_total_bytes'] / gib:.1f} GiB",
        f"clock      {round(r['clock_offset_s'], 3) + 0.0:+.3f} s against this dock",
        f"footage    {r['recording_count']} recording(s), "
        f"{sum(x['size'] for x in r['recordings']) / (1 << 20):.1f} MiB",
    ]
    if r.get("guarantees"):
        g = r["guarantees"]
        rest = ", ".join(f"{k} {shown(v)}" for k, v in g.items() if k != "driver")
        lines.append(f"driver     {shown(g.get('driver'))}: {rest}")
    if r["officer_id"] is not None:
        lines.append(f"officer    {shown(r['officer_id'])}")
    if r["faults"]:
        lines.append(f"faults     {', '.join(r['faults'])}")
    return "\n".join(lines)
