"""``[policy]``: a regulation's preset and the file's overrides of it.

An override stricter than the preset is taken silently; one laxer than it is allowed
but warned about (``LAXER`` says, field by field, which way is laxer).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Mapping
from typing import Any

from common.checker import INVALID, Bad, Checker, as_float, as_int, choice, kind, show
from dock.domain.policy import (
    DEADLINE_STARTS,
    DEFAULT_PRESET,
    ERASE_MODES,
    PRESETS,
    Policy,
    policy_from,
)

POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(Policy) if f.name != "name")
POLICY_KEYS = ("preset", *POLICY_FIELDS)

_POLICY_TYPES: dict[str, Any] = typing.get_type_hints(Policy)


def _policy_value(name: str, value: Any) -> Any:
    """An override checked and converted to the Policy field's type; Bad if wrong."""
    hint = _POLICY_TYPES[name]
    default = getattr(PRESETS[DEFAULT_PRESET], name)
    example = f"{name} = {show(list(default) if isinstance(default, tuple) else default)}"
    if hint is bool:
        if isinstance(value, bool):
            return value
        fix = "write true or false without quotes"
        raise Bad(f"expected a boolean, got {kind(value)}", fix)
    if hint is int:
        number = as_int(value, example)
        if name.endswith("_percent"):
            if not 0 <= number <= 100:
                raise Bad(f"{number} is not a percentage", "use a whole number from 0 to 100")
        elif number <= 0:
            raise Bad(f"{number} is not positive", f"use a whole number above 0, e.g. {example}")
        return number
    if hint is float:
        real = as_float(value, example)
        if not real > 0:
            raise Bad(f"{real} is not positive", f"use a number above 0, e.g. {example}")
        return real
    if hint == int | None:
        # TOML has no null: 0 stands for "not set".
        number = as_int(value, f"{name} = 1")
        if number < 0:
            raise Bad(f"{number} is negative", "use 0 (not set) or a whole number above 0")
        return number or None
    if hint == tuple[str, ...]:
        if not isinstance(value, list):
            raise Bad(f"expected an array of strings, got {kind(value)}", f"e.g. {name} = []")
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        if bad:
            raise Bad(
                f"{kind(bad[0])} in the array", 'every entry must be a quoted string, e.g. ["a"]'
            )
        return tuple(value)
    if hint is str and name == "erase_on_device":
        if value not in ERASE_MODES:
            raise Bad(f"{show(value)} is not an erase mode", f"use one of {list(ERASE_MODES)}")
        return value
    if hint is str and name == "offload_deadline_from":
        if value not in DEADLINE_STARTS:
            fix = f"use one of {list(DEADLINE_STARTS)}"
            raise Bad(f"{show(value)} is not a moment a deadline starts from", fix)
        return value
    raise Bad(f"has a type ({hint}) the configuration cannot set", "remove it")  # pragma: no cover


def _higher_is_laxer(new: Any, old: Any) -> bool:
    return new > old


def _lower_is_laxer(new: Any, old: Any) -> bool:
    return new < old


def _drops_entries(new: tuple[str, ...], old: tuple[str, ...]) -> bool:
    return bool(set(old) - set(new))


def _widens_firmware(new: tuple[str, ...], old: tuple[str, ...]) -> bool:
    # Empty means "any firmware".
    return bool(old) and (not new or bool(set(new) - set(old)))


#: For each Policy field: whether a value is laxer than the preset's. The deadline
#: fields are judged together in _deadline_laxer. A test checks every field has a rule.
LAXER: dict[str, Callable[[Any, Any], bool] | None] = {
    "offload_deadline_hours": None,
    "offload_deadline_working_days": None,
    # a later start (recording < activity_end < return) gives more time
    "offload_deadline_from": lambda new, old: (
        DEADLINE_STARTS.index(new) > DEADLINE_STARTS.index(old)
    ),
    "retention_days": _lower_is_laxer,
    "min_recorders_per_officer": _lower_is_laxer,
    "shift_hours": _lower_is_laxer,
    "return_grace_minutes": _higher_is_laxer,
    "recording_hours_per_shift": _lower_is_laxer,
    "battery_hours_when_new": _higher_is_laxer,
    "min_battery_percent": _lower_is_laxer,
    "assumed_battery_health_percent": _higher_is_laxer,
    "bytes_per_recording_hour": _lower_is_laxer,
    "max_clock_drift_after_sync_s": _higher_is_laxer,
    "allowed_firmware": _widens_firmware,
    "erase_on_device": lambda new, old: new == "after_verify" and old != new,
    "erase_on_mass_storage": lambda new, old: new and not old,
    "allow_unknown_clock_and_battery": lambda new, old: new and not old,
    "supervisor_override_allowed": lambda new, old: new and not old,
    "never_overridable": _drops_entries,
    "explain_manual_stops": lambda new, old: old and not new,
    "continuity_tolerance_s": _higher_is_laxer,
    # no schedule is laxer than any; a longer interval is laxer than a shorter one
    "maintenance_interval_days": lambda new, old: old is not None and (new is None or new > old),
}


def _describe_deadline(p: Policy) -> str:
    if p.offload_deadline_working_days is not None:
        n = p.offload_deadline_working_days
        return f"{n} working day{'s' if n != 1 else ''}"
    return f"{p.offload_deadline_hours:g} h"


def _deadline_laxer(new: Policy, old: Policy) -> bool:
    new_days, old_days = new.offload_deadline_working_days, old.offload_deadline_working_days
    if new_days is not None and old_days is not None:
        return new_days > old_days
    if new_days is None and old_days is None:
        return new.offload_deadline_hours > old.offload_deadline_hours
    if new_days is not None:  # working days always last at least as long as 24 h each
        return new_days * 24 >= old.offload_deadline_hours
    return new.offload_deadline_hours > (old_days or 0) * 24


def check_policy(ck: Checker, table: Mapping[str, Any]) -> tuple[Policy | None, tuple[str, ...]]:
    ck.unknown_keys("policy", {k: v for k, v in table.items() if k != "name"}, POLICY_KEYS)
    if "name" in table:
        ck.problem("policy.name", "cannot be set", 'choose a preset with preset = "..." instead')
    preset = ck.get(
        table, "policy", "preset", choice(PRESETS, f'preset = "{DEFAULT_PRESET}"'), DEFAULT_PRESET
    )
    overrides: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        if name in table:
            value = ck.get(table, "policy", name, functools.partial(_policy_value, name))
            if value is not INVALID:
                overrides[name] = value
    if preset is INVALID or len(overrides) != len([n for n in POLICY_FIELDS if n in table]):
        return None, ()
    base = PRESETS[preset]
    try:
        policy = policy_from(preset, overrides)
    except (KeyError, TypeError, ValueError) as exc:  # pragma: no cover - checked above
        ck.problem("policy", f"rejected by policy_from ({exc})", "check the overrides")
        return None, ()
    if policy.offload_deadline_working_days is not None and "offload_deadline_hours" in overrides:
        ck.problem(
            "policy.offload_deadline_hours",
            f"has no effect: the deadline counts working days "
            f"(offload_deadline_working_days = {policy.offload_deadline_working_days})",
            "also set offload_deadline_working_days = 0 to count hours, or remove this key",
        )
    if _deadline_laxer(policy, base):
        ck.warn(
            "policy",
            f"offload deadline {_describe_deadline(policy)} is laxer than preset "
            f'"{preset}" ({_describe_deadline(base)})',
        )
    for name, value in overrides.items():
        rule = LAXER.get(name)
        old = getattr(base, name)
        if rule is not None and rule(value, old):
            ck.warn(
                f"policy.{name}",
                f'{show(_plain(value))} is laxer than preset "{preset}" ({show(_plain(old))})',
            )
    return policy, tuple(sorted(overrides))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
