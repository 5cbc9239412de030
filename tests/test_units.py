"""The systemd units in systemd/: valid for systemd, as hardened as docs/OPERATIONS.md
("Hardening") says, and the generator that makes the configured folders writable.

`systemd-analyze verify` needs the units' programs to exist: it runs here against a
root folder of the test's own holding this machine's system units, the units under
test and stub programs at the installed paths (the installed package is verified in
its own chroot test). `systemd-analyze security --offline=true` rates the unit files
as they are. Both are skipped, saying so, where systemd-analyze is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
GENERATOR = SYSTEMD / "dock-paths-generator"
UNITS = ("dock.service", "dock-web.service", "dock-hq.service", "dock-kiosk.service")
#: The issue's targets (exposure 0-10, as systemd-analyze prints it).
EXPOSURE_TARGET = {"dock.service": 4.0, "dock-web.service": 2.5, "dock-hq.service": 2.5}
#: What the units start, as the package installs it.
PROGRAMS = (
    "/usr/bin/dock",
    "/usr/bin/dock-web",
    "/usr/bin/dock-hq",
    "/usr/lib/bwc-dock/dock-kiosk",
)


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed")
    return found


# ---------------------------------------------------------------------- exposure


def exposure(unit: str, threshold: float | None = None) -> tuple[float, int]:
    """The unit file's overall exposure and the exit status (non-zero above threshold)."""
    args = [analyze(), "security", "--offline=true", "--no-pager"]
    if threshold is not None:
        args.append(f"--threshold={round(threshold * 10)}")  # the option counts 0-100
    done = subprocess.run([*args, str(SYSTEMD / unit)], capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return float(found.group(1)), done.returncode


@pytest.mark.parametrize("unit", sorted(EXPOSURE_TARGET))
def test_exposure_is_within_target(unit: str) -> None:
    target = EXPOSURE_TARGET[unit]
    level, status = exposure(unit, threshold=target)
    assert level <= target and status == 0, f"{unit}: exposure {level} > {target}"


def test_threshold_counts_tenths_so_the_check_can_fail() -> None:
    level, _ = exposure("dock.service")
    assert level > 0.5
    assert exposure("dock.service", threshold=level - 0.5)[1] != 0


def test_a_unit_without_its_hardening_is_rated_exposed(tmp_path: Path) -> None:
    text = (SYSTEMD / "dock-web.service").read_text()
    kept = [line for line in text.splitlines() if not line.startswith(("Protect", "Private"))]
    (tmp_path / "dock-web.service").write_text("\n".join(kept) + "\n")
    done = subprocess.run(
        [
            analyze(),
            "security",
            "--offline=true",
            "--threshold=25",
            str(tmp_path / "dock-web.service"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0


# ---------------------------------------------------------------------- verify


def make_root(tmp: Path) -> Path:
    """A root with this machine's system units, ours, and stub programs."""
    root = tmp / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for name in UNITS:
        shutil.copy(SYSTEMD / name, root / "usr/lib/systemd/system" / name)
    for program in PROGRAMS:
        stub = root / program.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [analyze(), "verify", "--man=no", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    analyze()
    if not Path("/usr/lib/systemd/system/sysinit.target").exists():
        pytest.skip("this machine has no systemd units to verify against")
    return make_root(tmp_path)


def test_units_verify_without_a_warning(root: Path) -> None:
    done = verify(root, *UNITS)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == ""


def test_units_verify_with_the_generated_paths(root: Path, tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text(
        '[dock]\nstate_dir = "/mnt/evidence disk/state"\nevidence_dir = "/mnt/ev 100%"\n'
        'audit_checkpoint_copy = "/srv/dock-audit/checkpoint.json"\n'
    )
    generate(tmp_path, dock=config, outdir=root / "etc/systemd/system")
    done = verify(root, "dock.service", "dock-web.service", "dock-hq.service")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def test_verify_fails_on_a_broken_copy(root: Path) -> None:
    unit = root / "usr/lib/systemd/system/dock.service"
    good = unit.read_text()
    unit.write_text(good.replace("Type=notify", "Type=notifyy"))
    assert "Failed to parse service type" in verify(root, "dock.service").stderr
    unit.write_text(good)
    (root / "usr/bin/dock").unlink()
    done = verify(root, "dock.service")
    assert done.returncode != 0 and "/usr/bin/dock" in done.stderr


def test_dock_service_settings_the_issue_asks_for() -> None:
    """Read as systemd reads them: the settings, not their comments."""
    settings = unit_settings(SYSTEMD / "dock.service")
    assert settings["Type"] == ["notify"] and settings["NotifyAccess"] == ["main"]
    assert int(settings["WatchdogSec"][0]) >= 200  # a healthy sweep's worst case (OPERATIONS)
    assert "time-sync.target" in settings["Wants"][0] and "time-sync.target" in settings["After"][0]
    assert settings["ExecStart"] == ["/usr/bin/dock --config /etc/dock/dock.toml run"]
    assert settings["CapabilityBoundingSet"] == [""] and settings["ProtectSystem"] == ["strict"]
    assert settings["DevicePolicy"] == ["closed"]
    assert "char-ttyACM rw" in settings["DeviceAllow"] and "char-input r" in settings["DeviceAllow"]


def unit_settings(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


# ---------------------------------------------------------------------- the generator


def generate(
    tmp: Path,
    dock: Path | None = None,
    hq: Path | None = None,
    outdir: Path | None = None,
) -> tuple[Path, subprocess.CompletedProcess[str], str]:
    """Run the generator as systemd would; the output folder, the run, the kernel log."""
    out = outdir or tmp / "generator"
    out.mkdir(parents=True, exist_ok=True)
    kmsg = tmp / "kmsg"
    kmsg.write_text("")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DOCK_PATHS_DOCK_CONFIG": str(dock or tmp / "no-dock.toml"),
        "DOCK_PATHS_HQ_CONFIG": str(hq or tmp / "no-hq.toml"),
        "DOCK_PATHS_KMSG": str(kmsg),
    }
    done = subprocess.run(
        [str(GENERATOR), str(out), str(out), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return out, done, kmsg.read_text()


def dropin(out: Path, unit: str) -> str:
    return (out / f"{unit}.d" / "50-paths.conf").read_text()


def writable(text: str) -> list[str]:
    return [
        line.removeprefix("ReadWritePaths=")
        for line in text.splitlines()
        if line.startswith("ReadWritePaths=")
    ]


def test_generator_makes_the_configured_folders_writable(tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text(
        '[dock]\nid = "d1"\nstate_dir = "/mnt/evidence/state"\n'
        'evidence_dir = "/mnt/evidence/footage/"\n'
        'audit_checkpoint_copy = "/srv/dock-audit/checkpoint.json"\n'
    )
    out, done, kmsg = generate(tmp_path, dock=config)
    assert done.returncode == 0 and kmsg == "" and done.stderr == ""
    dock = dropin(out, "dock.service")
    # reset first (the unit's defaults go), then exactly the configured folders
    assert writable(dock) == [
        "",
        '"/mnt/evidence/state"',
        '"/mnt/evidence/footage"',
        '"/srv/dock-audit"',
    ]
    assert (
        'RequiresMountsFor="/mnt/evidence/state" "/mnt/evidence/footage" "/srv/dock-audit"' in dock
    )
    assert "[Unit]" in dock and "[Service]" in dock and "ProtectHome" not in dock
    # the site writes only the state folder
    assert writable(dropin(out, "dock-web.service")) == ["", '"/mnt/evidence/state"']
    assert writable(dropin(out, "dock-hq.service")) == ["", '"/var/lib/dock-hq"']


def test_generator_quotes_spaces_and_escapes_specifiers(tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text('[dock]\nstate_dir = "/srv/dock state"\nevidence_dir = "/mnt/ev 100%"\n')
    out, done, kmsg = generate(tmp_path, dock=config)
    assert done.returncode == 0 and kmsg == ""
    assert writable(dropin(out, "dock.service")) == ["", '"/srv/dock state"', '"/mnt/ev 100%%"']


def test_generator_default_checkpoint_folder_is_inside_the_state_folder(tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text('[dock]\nstate_dir = "/data/dock"\n')
    out, _, _ = generate(tmp_path, dock=config)
    assert writable(dropin(out, "dock.service")) == ["", '"/data/dock"', '"/srv/evidence"']


def test_generator_reads_hq_database_folder(tmp_path: Path) -> None:
    hq = tmp_path / "hq.toml"
    hq.write_text('[hq]\nname = "main"\ndb = "/srv/fleet/fleet.sqlite3"\n')
    out, _, _ = generate(tmp_path, hq=hq)
    assert writable(dropin(out, "dock-hq.service")) == ["", '"/srv/fleet"']


def test_generator_folder_under_home_keeps_home_readable(tmp_path: Path) -> None:
    config = tmp_path / "dock.toml"
    config.write_text('[dock]\nevidence_dir = "/home/evidence"\n')
    out, _, _ = generate(tmp_path, dock=config)
    assert "ProtectHome=read-only" in dropin(out, "dock.service")
    assert "ProtectHome" not in dropin(out, "dock-web.service")


DEFAULTS = ["", '"/var/lib/dock"', '"/srv/evidence"']


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[dock]\nstate_dir = "/var/lib/dock\n', "Illegal character"),  # broken TOML
        ('[dock]\nstate_dir = "dock-state"\n', "is not an absolute path"),
        ('[dock]\nevidence_dir = "/srv/a\\"b"\n', "quote, a backslash"),
        ("[dock]\nstate_dir = 5\n", "is not a path"),
        ('dock = "x"\n', "[dock] is not a table"),
        ('[dock]\nstate_dir = "/"\n', "root folder"),
        (b'[dock]\nsite = "\xce\xf7"\n', "codec"),  # GBK, not UTF-8
    ],
)
def test_generator_falls_back_to_defaults_and_says_why(
    tmp_path: Path, text: str | bytes, said: str
) -> None:
    config = tmp_path / "dock.toml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text)
    out, done, kmsg = generate(tmp_path, dock=config)
    assert done.returncode == 0
    assert writable(dropin(out, "dock.service")) == DEFAULTS
    assert kmsg.startswith("<4>dock-paths-generator: ") and said in kmsg
    assert kmsg.count("\n") == 1 and "defaults /var/lib/dock /srv/evidence" in kmsg


def test_generator_without_a_config_writes_defaults(tmp_path: Path) -> None:
    out, done, kmsg = generate(tmp_path)
    assert done.returncode == 0
    assert writable(dropin(out, "dock.service")) == DEFAULTS
    assert writable(dropin(out, "dock-web.service")) == ["", '"/var/lib/dock"']
    assert "no such file" in kmsg and "no-hq" not in kmsg  # hq.toml is optional on a dock


def test_generator_never_fails_the_boot(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    kmsg = tmp_path / "kmsg"
    done = subprocess.run(
        [str(GENERATOR), str(blocked / "sub")],  # an output folder that cannot be made
        env={"DOCK_PATHS_KMSG": str(kmsg), "DOCK_PATHS_DOCK_CONFIG": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0
    assert "cannot write the drop-ins" in kmsg.read_text()


# ---------------------------------------------------------------------- the kiosk

KIOSK = SYSTEMD / "dock-kiosk"


def kiosk(
    tmp: Path, config: str | None, programs: tuple[str, ...] = ("cage", "chromium")
) -> subprocess.CompletedProcess[str]:
    """Run the launcher in a dry run, with stub programs first on PATH."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in programs:
        stub = bin_dir / name
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
    path = tmp / "dock.toml"
    if config is not None:
        path.write_text(config)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DOCK_CONFIG": str(path),
        "DOCK_KIOSK_DRY_RUN": "1",
        "STATE_DIRECTORY": "/var/lib/dock-kiosk",
    }
    if "chromium" not in programs and shutil.which("chromium", path="/usr/bin:/bin"):
        env["PATH"] = str(bin_dir)  # this machine has Chromium: hide it
        env["DOCK_KIOSK_PYTHON"] = "/usr/bin/python3"
    return subprocess.run(
        ["/bin/sh", str(KIOSK)], env=env, capture_output=True, text=True, timeout=30
    )


def test_kiosk_opens_the_kiosk_page_of_the_configured_site(tmp_path: Path) -> None:
    done = kiosk(tmp_path, '[web]\nlisten = ["192.168.10.20", "127.0.0.1"]\nport = 8081\n')
    assert done.returncode == 0 and done.stderr == ""
    words = done.stdout.split()
    assert words[0] == f"{tmp_path}/bin/cage" and words[1:3] == ["-d", "--"]
    assert words[3] == f"{tmp_path}/bin/chromium"
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        "--disable-session-crashed-bubble",
        "--incognito",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--user-data-dir=/var/lib/dock-kiosk/chromium",
    ):
        assert flag in words
    assert words[-1] == "http://127.0.0.1:8081/kiosk"  # the loopback, the kiosk's address
    assert "--allow-insecure-localhost" not in words


def test_kiosk_defaults_and_tls(tmp_path: Path) -> None:
    assert kiosk(tmp_path, None).stdout.split()[-1] == "http://127.0.0.1:8080/kiosk"
    done = kiosk(tmp_path, '[web]\nlisten = ["::1"]\ntls_cert = "/etc/dock/web.crt"\n')
    words = done.stdout.split()
    assert words[-1] == "https://[::1]:8080/kiosk" and "--allow-insecure-localhost" in words


def test_kiosk_on_a_lan_address_warns_when_it_is_not_allowed(tmp_path: Path) -> None:
    done = kiosk(tmp_path, '[web]\nlisten = ["192.168.10.20"]\ntls_cert = "/x.crt"\n')
    assert done.returncode == 0
    assert done.stdout.split()[-1] == "https://192.168.10.20:8080/kiosk"
    assert "--allow-insecure-localhost" not in done.stdout  # a real certificate is needed
    assert "kiosk_allowed_from does not list 192.168.10.20" in done.stderr


@pytest.mark.parametrize(
    ("programs", "said"),
    [(("chromium",), "cage is not installed"), (("cage",), "Chromium is not installed")],
)
def test_kiosk_without_cage_or_chromium_says_so_in_one_line(
    tmp_path: Path, programs: tuple[str, ...], said: str
) -> None:
    if "cage" not in programs and shutil.which("cage", path="/usr/bin:/bin"):
        pytest.skip("cage is installed on this machine")
    done = kiosk(tmp_path, None, programs)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and said in done.stderr


def test_kiosk_with_a_broken_config_says_so_in_one_line(tmp_path: Path) -> None:
    done = kiosk(tmp_path, "[web\nport = 1\n")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("dock-kiosk: ")
