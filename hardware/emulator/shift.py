"""``./scripts/demo``: a whole shift at an emulated dock, each step said before it happens.

It starts ``dock run --emulate N`` (its output goes to ``<state>/dock-run.log``), then,
through the same commands a person would type: officer 1001 checks a recorder out by
PIN, takes it out of its bay, films, puts it back; the dock offloads it with progress,
verifies it and says "footage safe". Then it says where the footage is and how to see
the site, and leaves the dock running for exploration (``--once`` or ``DEMO_ONCE=1``:
stop it and exit, for tests). Every wait is bounded; the dock is only ever reached
through its command line and the emulator through its control socket.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from hardware.emulator.bays import MAX_RECORD_S
from hardware.emulator.control import ControlError, ask
from hardware.emulator.links import control_path

OFFICER, PIN, NAME = "1001", "246810", "王伟 Wang Wei"
#: Seconds the dock has to come up, to see a change, to offload one recording.
START_S, SEE_S, OFFLOAD_S = 90.0, 60.0, 300.0
#: Seconds between looks at the dock's status while waiting.
POLL_S = 0.1
#: Longest status reply read from the daemon (bytes).
MAX_STATUS = 4 << 20


class ShiftFailed(Exception):
    """The shift could not go on; the message says where, in one line."""


class Shift:
    """One demo shift against a dock daemon this object starts and stops."""

    def __init__(self, state: str, count: int, extra: list[str], say: Callable[[str], None]):
        self.state = state
        self.count = count
        self.extra = extra
        self.say = say
        self.config = os.path.join(state, "dock.toml")
        self.control = control_path(os.path.join(state, "recorders"))
        self.log_path = os.path.join(state, "dock-run.log")
        self.env = {**os.environ, "DOCK_CONFIG": self.config}
        self.daemon: subprocess.Popen[bytes] | None = None
        self.step = 0

    # ------------------------------------------------------------------ plumbing
    def tell(self, text: str) -> None:
        """A numbered step, said before it happens."""
        self.step += 1
        self.say(f"\n[{self.step}] {text}")

    def dock(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """``dock ARGS`` with this dock's configuration, as typed in another shell."""
        return subprocess.run(
            [sys.executable, "-m", "dock.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self) -> dict[str, Any]:
        """The daemon's last look at every slot, asked on its control socket
        (docs/CONTROL.md) without a new sweep: cheap enough to follow an offload."""
        request = {"id": 1, "request": "status", "args": {"refresh": False}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30.0)
            try:
                sock.connect(os.path.join(self.state, "control.sock"))
                sock.sendall(json.dumps(request).encode() + b"\n")
                with sock.makefile("rb") as f:
                    line = f.readline(MAX_STATUS)
            except OSError as exc:
                raise ShiftFailed(f"the dock does not answer: {exc}") from None
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise ShiftFailed(f"the dock's status failed: {line[:300]!r}")
        report: dict[str, Any] = reply["result"]
        return report

    def slot(self, slot: str) -> dict[str, Any]:
        row: dict[str, Any] = next(r for r in self.status()["slots"] if r["slot"] == slot)
        return row

    def emulator(self, command: str, **fields: Any) -> dict[str, Any]:
        try:
            reply = ask(self.control, {"command": command, **fields})
        except ControlError as exc:
            raise ShiftFailed(str(exc)) from None
        if not reply.get("ok"):
            raise ShiftFailed(f"emulator: {reply.get('error')}")
        return reply

    def wait_for(self, what: str, seconds: float, done: Callable[[], bool]) -> None:
        """Look until ``done()`` (bounded in time); ShiftFailed naming ``what`` if not."""
        deadline = time.monotonic() + seconds
        while not done():
            self._daemon_alive()
            if time.monotonic() > deadline:
                raise ShiftFailed(f"gave up after {seconds:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    def _daemon_alive(self) -> None:
        if self.daemon is not None and self.daemon.poll() is not None:
            raise ShiftFailed(
                f"the dock stopped (exit {self.daemon.returncode}); see {self.log_path}"
            )

    # ------------------------------------------------------------------ the dock
    def start(self) -> None:
        self.tell(f"Starting the dock with {self.count} emulated recorders (state in {self.state})")
        command = [
            sys.executable,
            "-m",
            "dock.cli.main",
            "run",
            "--emulate",
            str(self.count),
            "--state-dir",
            self.state,
            "--interval",
            "1",
            *self.extra,
        ]
        with open(self.log_path, "ab") as log:
            self.daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        sockets = (self.control, os.path.join(self.state, "control.sock"))
        self.wait_for("the dock to start", START_S, lambda: all(map(os.path.exists, sockets)))
        self.wait_for("its first look at the slots", START_S, self._first_sweep_done)
        for row in self.status()["slots"]:
            self.say(f"    slot {row['slot']}: {row['device'] or '-'} {row['state']}")

    def _first_sweep_done(self) -> bool:
        return all(r["state"] not in ("empty", "identifying") for r in self.status()["slots"])

    def stop(self) -> None:
        """Stop the dock (SIGTERM: it finishes running offloads, bounded), then wait."""
        daemon, self.daemon = self.daemon, None
        if daemon is None or daemon.poll() is not None:
            return
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=90)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)

    # ------------------------------------------------------------------ the shift
    def run(self, seconds: int) -> dict[str, Any]:
        """The shift, from check-out to "footage safe"; what was filmed and archived."""
        self.start()
        self.tell(
            f"Officer {OFFICER} ({NAME}) checks out a recorder with PIN {PIN}:"
            f" dock checkout --officer {OFFICER} --pin {PIN}"
        )
        slot, serial = self.checkout()
        self.tell(
            f"The officer takes {serial} out of slot {slot}: "
            f"recorder-emulator control undock {slot}"
        )
        self.emulator("undock", slot=slot)
        self.wait_for(
            f"slot {slot} to be seen empty", SEE_S, lambda: self.slot(slot)["state"] == "empty"
        )
        self.say(
            f"    the dock: slot {slot} is empty; {serial} is away with officer {OFFICER}"
            " (custody continues until it is back)"
        )
        self.tell(
            f"On patrol, {serial} films {seconds} s: "
            f"recorder-emulator control record {slot} {seconds}"
        )
        filmed = self.emulator("record", slot=slot, seconds=seconds)
        self.say(
            f"    {serial} recorded {filmed['recording']}: {filmed['bytes']:,} bytes, "
            f"sha256 {filmed['sha256'][:16]}…"
        )
        self.tell(
            f"The officer puts {serial} back in slot {slot}: recorder-emulator control dock {slot}"
        )
        self.emulator("dock", slot=slot)
        self.wait_for(
            f"{serial} to be seen back in slot {slot}",
            SEE_S,
            lambda: self.slot(slot)["device"] == serial,
        )
        self.say(
            f"    the dock: {serial} is back in slot {slot}; officer {OFFICER}'s custody of it ends"
        )
        self.tell("The dock offloads the footage, verifies it and archives it:")
        outcome = self.offload(slot, serial)
        self.say(
            f"    footage safe: {outcome['verified']} recording(s) verified, returned by "
            f"officer {outcome.get('officer') or '?'} {outcome.get('officer_name') or ''}"
        )
        archived = self.where(serial, filmed)
        return {"filmed": filmed, "archived": archived, "slot": slot, "serial": serial}

    def checkout(self) -> tuple[str, str]:
        out = self.dock("checkout", "--officer", OFFICER, "--pin", PIN, "--json")
        try:
            decision = json.loads(out.stdout)
        except ValueError:
            decision = {}
        if out.returncode != 0 or not decision.get("granted"):
            why = "; ".join(r.get("message", "") for r in decision.get("reasons", []))
            raise ShiftFailed(f"check-out refused: {why or out.stderr.strip()[-300:]}")
        slot, serial = str(decision["slot"]), str(decision["device"])
        self.say(f"    granted: take {serial} from slot {slot}")
        return slot, serial

    def offload(self, slot: str, serial: str) -> dict[str, Any]:
        """Progress as the dock reports it, until the return's outcome is known."""
        shown: set[int] = set()
        outcome: dict[str, Any] = {}

        def looked() -> bool:
            row = self.slot(slot)
            progress = row.get("offload")
            if progress:
                line, step = _progress_line(progress)
                if step not in shown:  # a line per tenth, not per look
                    shown.add(step)
                    self.say(f"    offloading {serial}: {line}")
            returned = row.get("returned")
            if returned and returned.get("serial") == serial and not returned.get("nothing_new"):
                outcome.update(returned)
                return True
            return False

        self.wait_for(f"the offload of {serial}", OFFLOAD_S, looked)
        if not outcome.get("safe"):
            raise ShiftFailed(f"the offload of {serial} did not end safe: {outcome}")
        return outcome

    def where(self, serial: str, filmed: dict[str, Any]) -> dict[str, Any]:
        """Where the recording made while away is archived; its hash against the device's."""
        self.tell(f"Where the footage is: dock archive list --officer {OFFICER}")
        out = self.dock("archive", "list", "--officer", OFFICER, "--json")
        rows = json.loads(out.stdout) if out.returncode == 0 else []
        row = next(
            (r for r in rows if r["serial"] == serial and r["recording_id"] == filmed["recording"]),
            None,
        )
        if row is None:
            raise ShiftFailed(f"{filmed['recording']} of {serial} is not in the archive")
        same = row["sha256"] == filmed["sha256"]
        evidence = os.path.join(self.state, "evidence")  # emulated_config's evidence_dir
        self.say(
            f"    {row['recording_id']} of {serial}, officer {row['officer_id']}: "
            f"{os.path.join(evidence, row.get('path', ''))}"
        )
        self.say(
            f"    sha256 {row['sha256'][:16]}… "
            + ("= the recorder's capture hash" if same else "DIFFERS from the recorder's")
        )
        if not same:
            raise ShiftFailed("the archived copy's hash differs from the recorder's")
        return dict(row)

    def explore(self) -> None:
        """What to look at next, while the dock keeps running."""
        venv = os.path.dirname(sys.executable)
        self.say("\nThe dock keeps running for you to explore (Ctrl-C stops it).")
        self.say(f"  its screen and log:   tail -f {self.log_path}")
        self.say(f"  in another shell:     export DOCK_CONFIG={self.config}")
        self.say(f"                        export EMULATOR_CONTROL={self.control}")
        self.say(
            f"  the site:             {venv}/dock-web   then open "
            "http://127.0.0.1:8080/kiosk (officer 1001, PIN 246810; supervisor 9001, "
            "PIN 999000)"
        )
        self.say(f"  the dock:             {venv}/dock status | archive list | audit verify")
        self.say(f"  the recorders:        {venv}/recorder-emulator control status")


def _progress_line(p: dict[str, Any]) -> tuple[str, int]:
    """One offload's progress in words (the dock's status JSON ``offload``), and which
    tenth of the way it is."""
    if p.get("bytes_total"):
        percent = float(p.get("percent") or 0)
        mb = f"{p['bytes_done'] / 1e6:.1f} of {p['bytes_total'] / 1e6:.1f} MB"
        return f"{percent:.0f} % ({mb})", int(percent // 10)
    if p.get("total"):
        percent = 100.0 * p.get("done", 0) / p["total"]
        return f"{p.get('recording', '')} {percent:.0f} %", int(percent // 10)
    return "started", -1


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="scripts/demo",
        description="A whole shift at an emulated dock; extra arguments go to `dock run`.",
    )
    p.add_argument(
        "--once",
        action="store_true",
        default=os.environ.get("DEMO_ONCE") == "1",
        help="stop the dock once the footage is safe (also DEMO_ONCE=1)",
    )
    p.add_argument("--state-dir", help="where the dock and its recorders keep state")
    p.add_argument(
        "--emulate",
        type=int,
        default=os.environ.get("DOCK_EMULATE") or "4",
        metavar="N",
        help="emulated recorders (default 4, or $DOCK_EMULATE)",
    )
    p.add_argument("--seconds", type=int, default=30, help="seconds the officer films")
    a, extra = p.parse_known_args(argv)
    if not 1 <= a.emulate <= 64:
        p.error("--emulate (or DOCK_EMULATE) must be 1..64")
    if not 1 <= a.seconds <= MAX_RECORD_S:
        p.error(f"--seconds must be 1..{MAX_RECORD_S}")
    state = os.path.abspath(a.state_dir or tempfile.mkdtemp(prefix="dock-emulated-"))
    os.makedirs(state, exist_ok=True)
    shift = Shift(state, a.emulate, extra, lambda text: print(text, flush=True))
    signal.signal(signal.SIGTERM, _interrupted)  # `kill` stops the dock too, as Ctrl-C does
    try:
        shift.run(a.seconds)
        if a.once:
            print("\nThe shift is over: the footage is safe. Stopping the dock.", flush=True)
            return 0
        shift.explore()
        with contextlib.suppress(KeyboardInterrupt):
            if shift.daemon is not None:
                shift.daemon.wait()  # the person explores until Ctrl-C (or the dock ends)
        return 0
    except ShiftFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        shift.stop()


if __name__ == "__main__":
    raise SystemExit(main())
