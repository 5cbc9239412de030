"""The emulated recorder's body: battery and clock behave like a real device's."""

from __future__ import annotations

import pytest

from firmware_protocol.messages import EventKind
from hardware.emulator.recorder_model import RecorderModel, RecorderSpec


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def open_model(tmp_path, **spec) -> tuple[RecorderModel, FakeClock]:
    clock = FakeClock()
    spec.setdefault("recordings", 0)
    return RecorderModel.open(str(tmp_path), RecorderSpec(**spec), clock), clock


def test_charges_while_docked_up_to_full(tmp_path) -> None:
    m, clock = open_model(tmp_path, battery_percent=20.0, battery_health_percent=100)
    clock.t += 3600
    assert m.battery_percent() == pytest.approx(20 + 40 - 0.5, abs=0.01)
    assert m.charging()
    clock.t += 10 * 3600
    assert m.battery_percent() == 100.0 and not m.charging()


def test_worn_battery_charges_slower(tmp_path) -> None:
    m, clock = open_model(tmp_path, battery_percent=20.0, battery_health_percent=50)
    clock.t += 3600
    assert m.battery_percent() == pytest.approx(20 + 20 - 0.5, abs=0.01)


def test_drains_while_recording_off_the_dock_and_logs_low_battery(tmp_path) -> None:
    m, clock = open_model(tmp_path, battery_percent=20.0, recording=True, docked=False)
    clock.t += 3600
    assert m.battery_percent() == pytest.approx(20 - 12.5, abs=0.01)
    assert m.state["events"][-1]["kind"] == EventKind.LOW_BATTERY


def test_clock_drifts_by_its_ppm_and_set_time_reports_it(tmp_path) -> None:
    m, clock = open_model(tmp_path, clock_offset_s=0.0, drift_ppm=100.0)
    clock.t += 10_000
    assert m.device_time() - clock.t == pytest.approx(1.0, abs=1e-6)  # 100 ppm of 10^4 s
    drift = m.set_time(clock.t)
    assert drift == pytest.approx(1.0, abs=1e-6)
    assert m.device_time() == pytest.approx(clock.t, abs=1e-6)
    assert m.state["events"][-1]["kind"] == EventKind.TIME_SET


def test_footage_hashes_are_the_deterministic_ones(tmp_path) -> None:
    from hardware.emulator.footage import expected_sha256

    m, _ = open_model(tmp_path, serial="DET1", recordings=2, recording_mb=0.1)
    for rec in m.ordered_recordings():
        assert rec.sha256 == expected_sha256("DET1", rec.index, rec.size)
