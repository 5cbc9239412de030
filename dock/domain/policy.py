"""Policy presets: the numbers the regulations in shared/seeds set, one preset each.

Where the regulations differ the dock ships the strictest value as the default
(``strictest``) and a named preset per regulation; every value can be overridden
in the configuration file (``[policy]``). Check thresholds the regulations leave
open (they say "check the battery", not how much) are the project's own defaults,
the same in every preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

#: Battery health assumed when a recorder does not report it (no BATTERY_HEALTH
#: capability): 80 %, the capacity at which batteries are usually counted as worn
#: out. With the defaults a full battery passes a 10 h shift (14 h x 0.8 = 11.2 h) and
#: one charged below 90 % does not (PROTOCOL.md 6.7).
ASSUMED_BATTERY_HEALTH_PERCENT = 80


@dataclass(frozen=True)
class Policy:
    name: str
    #: Footage must reach the unit's storage within this long after the moment
    #: ``offload_deadline_from`` names.
    offload_deadline_hours: float = 24.0
    #: Count the deadline in working days (Mon-Fri) instead of hours.
    offload_deadline_working_days: int | None = None
    #: The moment the offload deadline starts from (REQUIREMENTS §4), one of
    #: ``DEADLINE_STARTS``: "recording" (the recording was made: 002 art.23; 004 att.1
    #: art.5, att.3 art.13), "activity_end" (the enforcement activity ended: 001
    #: art.19(3)) or "return" (the recorder came back to the unit: 003 art.13).
    offload_deadline_from: str = "recording"
    #: Minimum retention of ordinary footage.
    retention_days: int = 3 * 365
    #: Recorders per officer that must exist (1 per 2 officers = 0.5).
    min_recorders_per_officer: float = 0.5
    # --- pre-shift checks -------------------------------------------------------
    #: Length of a shift: the battery check asks for this much runtime, and a recorder
    #: not back this long (plus ``return_grace_minutes``) after its check-out raises an
    #: alert (000 §14.1; 002 art.22; 003 art.21: devices not lost through poor custody).
    shift_hours: float = 10.0
    #: Minutes after the end of the shift before a recorder not returned is raised.
    return_grace_minutes: int = 30
    #: Hours of recording expected in a shift, for the storage check.
    recording_hours_per_shift: float = 8.0
    #: Recording hours a new battery gives from full; scaled by battery health.
    battery_hours_when_new: float = 14.0
    min_battery_percent: int = 80
    #: Battery health assumed for the runtime check when a recorder does not report it
    #: (no BATTERY_HEALTH capability): a battery at the usual end-of-life capacity.
    assumed_battery_health_percent: int = ASSUMED_BATTERY_HEALTH_PERCENT
    #: Storage one hour of recording takes (about 4 Mbit/s video).
    bytes_per_recording_hour: int = 1_800_000_000
    max_clock_drift_after_sync_s: float = 1.0
    #: Firmware versions allowed at check-out; empty means any.
    allowed_firmware: tuple[str, ...] = ()
    #: When the recorder's copy may be erased: "after_verify" (as soon as the archive
    #: copy is verified) or "after_second_copy" (only once a second copy, e.g. on the
    #: unit's platform, is confirmed with `dock confirm-copy`).
    erase_on_device: str = "after_verify"
    #: Whether footage may be deleted on a mass-storage camera once verified (three
    #: reads agreeing: no capture hash exists). False: it stays on the camera, stated.
    erase_on_mass_storage: bool = False
    #: Whether a recorder that states no clock or no battery (a bare mass-storage
    #: camera) may be checked out all the same, the unknowns stated in the checks.
    #: False: refused, as any check that cannot be made (000 §14.1: checked before use).
    allow_unknown_clock_and_battery: bool = False
    #: Whether a supervisor may override a failed check (always audited).
    supervisor_override_allowed: bool = True
    #: Checks a supervisor may never override.
    never_overridable: tuple[str, ...] = field(
        default=("device_unknown", "device_lost", "officer_unknown", "officer_disabled")
    )
    # --- gaps in recording (REQUIREMENTS §5) ------------------------------------------
    #: Open an explanation item for every manual stop followed by a restart in the same
    #: custody episode. Off: the regulations ask for explanations of interruptions for
    #: objective causes (battery, storage, fault, weather, obstruction: 002 art.20; 001
    #: art.19(2)); an officer ending one incident and starting the next is not one, and
    #: an item per incident buries the real interruptions. Interruptions and faults are
    #: items whatever this says.
    explain_manual_stops: bool = False
    # --- continuity of footage (REQUIREMENTS §4) --------------------------------------
    #: Seconds a recording may start before the check-out or end after the return (the
    #: recorder's clock, set at every inspection, may have drifted since) before it is
    #: flagged as made outside the custody episode: after-the-fact recording or inserted
    #: footage (003 art.11, 13; 001 art.19(3); 002 art.23).
    continuity_tolerance_s: float = 120.0
    # --- devices (REQUIREMENTS §8) ------------------------------------------------------
    #: Days between a recorder's maintenance (000 §14.1; 002 art.22: maintained on a
    #: schedule): a recorder with no due date of its own falls due this long after its
    #: enrolment, and each repair sets the next due date this far ahead. None: only the
    #: due dates set per recorder (``dock device maintenance-due``).
    maintenance_interval_days: int | None = None


ERASE_MODES = ("after_verify", "after_second_copy")
#: Where an offload deadline may start, from the earliest (strictest) to the latest: a
#: recording is made before the activity it records ends, and that before the return.
DEADLINE_STARTS = ("recording", "activity_end", "return")


def _check(policy: Policy) -> Policy:
    if policy.erase_on_device not in ERASE_MODES:
        raise ValueError(f"erase_on_device must be one of {ERASE_MODES}")
    if policy.offload_deadline_from not in DEADLINE_STARTS:
        raise ValueError(f"offload_deadline_from must be one of {DEADLINE_STARTS}")
    return policy


PRESETS: dict[str, Policy] = {
    # The strictest of all: shortest deadline, longest retention.
    "strictest": Policy("strictest"),
    # 000 Qiannan prefecture guideline: retention 2 years (no deadline stated).
    "qiannan": Policy("qiannan", retention_days=2 * 365),
    # 001 Pishan county: one working day after the activity ended (art.19(3)), retention
    # 3 years, 1 recorder per 2 officers.
    "pishan": Policy(
        "pishan",
        offload_deadline_working_days=1,
        offload_deadline_from="activity_end",
        retention_days=3 * 365,
    ),
    # 002 Guangdong province: 24 hours after the recording was made (art.23; retention
    # left to the enforcing body: 1 year here).
    "guangdong": Policy("guangdong", offload_deadline_from="recording", retention_days=365),
    # 003 Tanghe county: 24 hours after return to the unit (art.13), retention 1 year.
    "tanghe": Policy("tanghe", offload_deadline_from="return", retention_days=365),
    # 004 Jingzhou: 2 days after the recording was made (att.1 art.5), retention 6 months.
    "jingzhou": Policy(
        "jingzhou",
        offload_deadline_hours=48.0,
        offload_deadline_from="recording",
        retention_days=183,
    ),
}
DEFAULT_PRESET = "strictest"


def policy_from(preset: str, overrides: dict[str, Any]) -> Policy:
    """A preset with overrides applied; raises KeyError/TypeError naming the bad key."""
    base = PRESETS[preset]
    known = {f.name: f for f in fields(Policy)}
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known or key == "name":
            raise KeyError(key)
        if isinstance(value, list):
            value = tuple(value)
        clean[key] = value
    return _check(replace(base, **clean))
