"""``recorder-emulator``: run one reference recorder on a pty or a TCP port;
``recorder-emulator control ...``: take the recorders of a running ``dock run
--emulate`` out of their bays, film, put them back (hardware/emulator/control_cli.py)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile

from firmware_protocol.messages import SUPPORTED_VERSIONS, Capability, FaultFlag
from hardware.emulator.link_faults import LinkFaults
from hardware.emulator.recorder import RecorderFirmware
from hardware.emulator.recorder_model import (
    ALL_CAPABILITIES,
    LEGACY_CAPABILITIES,
    RecorderModel,
    RecorderSpec,
)
from hardware.emulator.server import EmulatorServer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recorder-emulator",
        description="A reference body-worn recorder speaking the dock protocol. "
        "Prints the device path (pty) or URL (TCP) on the first line of stdout.",
    )
    p.add_argument("--listen", default="pty", help="'pty' (default) or tcp://127.0.0.1:PORT")
    p.add_argument("--data-dir", help="keep state and footage here across restarts")
    d = p.add_argument_group("device (used when the data dir is new)")
    d.add_argument("--serial", default="EMU0001")
    d.add_argument("--model", default="BWC-EMU-1")
    d.add_argument("--firmware", default="1.4.2")
    d.add_argument("--battery", type=float, default=85.0, help="charge, percent")
    d.add_argument("--battery-health", type=int, default=94, help="capacity vs new, percent")
    d.add_argument("--storage-total-mb", type=int, default=32 * 1024)
    d.add_argument("--storage-free-mb", type=int, default=30 * 1024)
    d.add_argument("--clock-offset", type=float, default=0.0, help="seconds ahead of UTC")
    d.add_argument("--drift-ppm", type=float, default=20.0)
    d.add_argument("--recordings", type=int, default=3, help="footage files on the device")
    d.add_argument("--recording-mb", type=float, default=2.0, help="size of each file, MiB")
    d.add_argument("--interrupted", type=int, default=0, help="last N recordings cut by battery")
    d.add_argument("--secret", help="enrolment secret, 64 hex digits (default: not enrolled)")
    d.add_argument("--legacy", action="store_true", help="older firmware, fewer capabilities")
    d.add_argument(
        "--without",
        action="append",
        default=[],
        choices=[c.name.lower() for c in Capability if c.name],
        help="leave out this optional capability (repeatable)",
    )
    p.add_argument(
        "--protocol-version",
        type=int,
        choices=SUPPORTED_VERSIONS,
        default=max(SUPPORTED_VERSIONS),
        help="newest protocol version served (every start); 1 emulates an old recorder",
    )
    d.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=[f.name.lower() for f in FaultFlag if f.name],
    )
    d.add_argument("--recording", action="store_true", help="start while recording")
    d.add_argument("--time-scale", type=float, default=1.0, help="speed up battery changes")
    f = p.add_argument_group("link faults")
    f.add_argument("--bit-error-rate", type=float, default=0.0)
    f.add_argument("--drop-rate", type=float, default=0.0, help="probability a write is lost")
    f.add_argument("--stall-after-bytes", type=int)
    f.add_argument("--stall-seconds", type=float, default=5.0)
    f.add_argument("--disconnect-after-bytes", type=int)
    f.add_argument("--seed", type=int, help="seed for fault injection")
    p.add_argument("--log-level", default="INFO")
    return p


def spec_from_args(a: argparse.Namespace) -> RecorderSpec:
    faults = FaultFlag(0)
    for name in a.fault:
        faults |= FaultFlag[name.upper()]
    capabilities = Capability(LEGACY_CAPABILITIES if a.legacy else ALL_CAPABILITIES)
    for name in a.without:
        capabilities &= ~Capability[name.upper()]
    secret = bytes.fromhex(a.secret) if a.secret else None
    if secret is not None and len(secret) != 32:
        raise SystemExit("--secret must be 64 hex digits (32 bytes)")
    return RecorderSpec(
        serial=a.serial,
        model=a.model,
        firmware=a.firmware,
        battery_percent=a.battery,
        battery_health_percent=a.battery_health,
        storage_total_mb=a.storage_total_mb,
        storage_free_mb=a.storage_free_mb,
        clock_offset_s=a.clock_offset,
        drift_ppm=a.drift_ppm,
        recordings=a.recordings,
        recording_mb=a.recording_mb,
        interrupted=a.interrupted,
        capabilities=capabilities,
        secret=secret,
        faults=faults,
        recording=a.recording,
        time_scale=a.time_scale,
    )


def faults_from_args(a: argparse.Namespace) -> LinkFaults:
    return LinkFaults(
        bit_error_rate=a.bit_error_rate,
        drop_rate=a.drop_rate,
        stall_after_bytes=a.stall_after_bytes,
        stall_seconds=a.stall_seconds,
        disconnect_after_bytes=a.disconnect_after_bytes,
        seed=a.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["control"]:  # commands to a running emulated dock's recorders
        from hardware.emulator.control_cli import main as control_main

        return control_main(args[1:])
    a = build_parser().parse_args(args)
    logging.basicConfig(
        stream=sys.stderr,
        level=a.log_level.upper(),
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
    )
    data_dir = a.data_dir or tempfile.mkdtemp(prefix=f"recorder-{a.serial}-")
    try:
        model = RecorderModel.open(data_dir, spec_from_args(a))
        versions = tuple(v for v in SUPPORTED_VERSIONS if v <= a.protocol_version)
        firmware = RecorderFirmware(model, versions=versions)
        server = EmulatorServer(firmware, a.listen, faults_from_args(a))
    except (ValueError, OSError) as exc:
        print(f"recorder-emulator: {exc}", file=sys.stderr)
        return 2
    print(server.url, flush=True)
    logging.getLogger("recorder").info(
        "serving %s on %s (data dir %s)", model.serial, server.url, data_dir
    )
    signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
