"""The Debian package (scripts/build-deb), as an installer meets it.

Built for amd64 and looked into (files, modes, owners, conffiles, maintainer scripts);
built for arm64 and armhf (no machine code for another machine in them); then installed
offline into a Debian bookworm root made with debootstrap, where its commands run, its
units pass ``systemd-analyze verify``, its users, folders and modes are checked, and an
upgrade keeps the configuration and the data, as does a purge.

The root is made once per machine and kept as a tarball in /var/cache/bwc-dock-tests
(named by what it includes); each run unpacks a copy in its own temporary folder, so the
cache stays clean. Every command in the root runs without a network (``unshare -n``),
and nothing is mounted there except /proc for the one test that needs it, always
unmounted. Root only (chroot, package ownership); skipped otherwise, and when the
Debian mirror cannot be reached to make a missing root. Timings are printed at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import packaging.requirements
import pytest

from common.version import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
BUILD_DEB = REPO / "scripts" / "build-deb"
MIRROR = os.environ.get("BWC_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
CACHE = Path(os.environ.get("BWC_ROOT_CACHE", "/var/cache/bwc-dock-tests"))
#: Installed with the package's Depends: what runs the units, and python3-cffi-backend,
#: which debootstrap cannot find by itself (python3-cryptography depends on a virtual
#: package it provides, and debootstrap does not resolve virtual packages).
EXTRA_PACKAGES = ("systemd", "udev", "python3-cffi-backend")
#: The environment of every command in the root: nothing of this machine's Python.
ROOT_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "DEBIAN_FRONTEND": "noninteractive",
}
ELF_MACHINES = {"amd64": 62, "arm64": 183, "armhf": 40}
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".target", ".mount")

TIMINGS: list[tuple[str, float]] = []


def load_build_deb() -> ModuleType:
    """packaging/build_deb.py as a module (packaging/ is a folder, not a package)."""
    spec = importlib.util.spec_from_file_location("build_deb", REPO / "packaging/build_deb.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_deb"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


build_deb = load_build_deb()


def timed(what: str, fn: Callable[[], Any]) -> Any:
    """Run fn, noting how long it took for the summary at the end of the module."""
    start = time.monotonic()
    try:
        return fn()
    finally:
        TIMINGS.append((what, time.monotonic() - start))


@pytest.fixture(scope="module", autouse=True)
def _print_timings(request: pytest.FixtureRequest) -> Iterator[None]:
    """The time of each step, printed after the module's last test."""
    yield
    lines = ", ".join(f"{what} {seconds:.1f} s" for what, seconds in TIMINGS)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and lines:
        with capture.global_and_fixture_disabled():  # shown even when output is captured
            print(f"\ntest_package timings: {lines}", flush=True)


def sh(
    *cmd: str | Path, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """A command on this machine; its output in the failure message."""
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        pytest.fail(f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def in_root(root: Path, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command inside the root, with no network and a clean environment."""
    done = subprocess.run(
        ["unshare", "--net", "chroot", str(root), *cmd],
        capture_output=True, text=True, timeout=300, env=ROOT_ENV, cwd="/", check=False,
    )  # fmt: skip
    if check and done.returncode != 0:
        pytest.fail(f"in the root: {cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


# ---- building ------------------------------------------------------------------------


class Builds:
    """The packages this module needs, each built once."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.made: dict[tuple[str, str], Path] = {}

    def get(self, arch: str, revision: str = "1") -> Path:
        if (arch, revision) not in self.made:
            out = self.out / f"{arch}-{revision}"
            done = timed(
                f"build {arch}-{revision}",
                lambda: sh(BUILD_DEB, "--arch", arch, "--out", out, "--revision", revision),
            )
            deb = Path(done.stdout.strip().splitlines()[-1])
            assert deb == out / f"bwc-dock_{__version__}-{revision}_{arch}.deb"
            self.made[(arch, revision)] = deb
        return self.made[(arch, revision)]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory.mktemp("debs"))


def control(deb: Path) -> dict[str, str]:
    """The control fields of a .deb."""
    fields: dict[str, str] = {}
    for line in sh("dpkg-deb", "--field", deb).stdout.splitlines():
        if line[:1] not in (" ", "\t") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def contents(deb: Path) -> dict[str, tuple[str, str]]:
    """path -> (mode string, owner/group) of every entry in the package."""
    out: dict[str, tuple[str, str]] = {}
    for line in sh("dpkg-deb", "--contents", deb).stdout.splitlines():
        mode, owner, _size, _date, _time, path = line.split(None, 5)
        out[path.split(" -> ")[0].removeprefix(".")] = (mode, owner)
    return out


def files_list() -> list[tuple[str, str, str]]:
    """packaging/files.list as (source, destination, mode)."""
    rows = []
    for raw in (REPO / "packaging/files.list").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            source, destination, mode = line.split()
            rows.append((source, destination, mode))
    return rows


def mode_string(octal: str) -> str:
    """0640 -> -rw-r----- (as dpkg-deb --contents shows a file)."""
    bits = int(octal, 8)
    out = ""
    for shift in (6, 3, 0):
        part = bits >> shift & 7
        out += ("r" if part & 4 else "-") + ("w" if part & 2 else "-") + ("x" if part & 1 else "-")
    return "-" + out


# ---- tests without root: the version, the wheel, the package's contents -------------------


def test_dock_version_is_the_release() -> None:
    out = sh(sys.executable, "-m", "dock.cli.main", "--version").stdout.strip()
    assert out == f"dock {__version__}"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "common.version.__version__"


def test_wheel_builds_without_license_warnings(tmp_path: Path) -> None:
    src = tmp_path / "src"
    build_deb.copy_sources(REPO, src)
    done = timed(
        "pip wheel",
        lambda: sh(sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w",
                   tmp_path / "out", src),
    )  # fmt: skip
    output = done.stdout + done.stderr
    for warning in ("BuildBackendWarning", "SetuptoolsDeprecationWarning"):
        assert warning not in output, [ln for ln in output.splitlines() if warning in ln]
    assert list((tmp_path / "out").glob(f"bwc_dock-{__version__}-py3-none-any.whl"))


def test_files_list_with_a_missing_source_is_a_one_line_error(tmp_path: Path) -> None:
    listed = tmp_path / "files.list"
    listed.write_text("# header\nsystemd/dock.service /usr/lib/x.service 0644\n"
                      "systemd/no-such.rules /usr/lib/udev/rules.d/x.rules 0644\n")  # fmt: skip
    with pytest.raises(build_deb.BuildError) as err:
        build_deb.read_files_list(listed, REPO)
    assert str(err.value) == "files.list line 3: source file systemd/no-such.rules is missing"


def test_amd64_package_contents(builds: Builds) -> None:
    deb = builds.get("amd64")
    fields = control(deb)
    assert fields["Package"] == "bwc-dock"
    assert fields["Version"] == f"{__version__}-1"
    assert fields["Architecture"] == "amd64"
    depends = [d.strip() for d in fields["Depends"].split(",")]
    for needed in ("python3 (>= 3.11)", "adduser", "python3-systemd"):
        assert needed in depends
    files = contents(deb)
    not_root = {p: o for p, (_m, o) in files.items() if o != "root/root"}
    assert not not_root, not_root
    for _source, destination, mode in files_list():
        assert files[destination][0] == mode_string(mode), destination
    for command in ("dock", "dock-web", "dock-hq"):
        assert files[f"/usr/bin/{command}"][0] == "-rwxr-xr-x"
    lib = [p for p in files if p.startswith("/opt/bwc-dock/lib/")]
    for package in ("dock", "hq", "web_status", "common", "flask", "paho", "serial"):
        assert f"/opt/bwc-dock/lib/{package}/__init__.py" in lib, package
    assert not [p for p in lib if "__pycache__" in p or p.endswith(".pyc")]
    assert "/opt/bwc-dock/lib/bin/" not in files
    # The commands: Debian's python3, isolated, the package's lib first.
    wrapper = sh("sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -xO ./usr/bin/dock-web")
    assert wrapper.stdout.startswith("#!/usr/bin/python3 -I\n")
    assert 'sys.path.insert(0, "/opt/bwc-dock/lib")' in wrapper.stdout
    assert "from web_status.server import main" in wrapper.stdout
    # conffiles: every file under /etc, nothing else.
    info = tmp_control(deb)
    listed_etc = sorted(d for _s, d, _m in files_list() if d.startswith("/etc/"))
    assert (info / "conffiles").read_text().split() == listed_etc
    for script in ("postinst", "prerm", "postrm"):
        path = info / script
        assert path.stat().st_mode & 0o777 == 0o755, script
        assert path.read_text().startswith("#!/bin/sh\n")
        sh("sh", "-n", path)


def tmp_control(deb: Path) -> Path:
    """The control archive of a .deb, unpacked next to it."""
    out = deb.parent / "DEBIAN"
    if not out.exists():
        sh("dpkg-deb", "--control", deb, out)
    return out


@pytest.mark.parametrize("arch", ["arm64", "armhf"])
def test_other_architectures_carry_no_foreign_machine_code(builds: Builds, arch: str) -> None:
    deb = builds.get(arch)
    assert control(deb)["Architecture"] == arch
    tree = deb.parent / "tree"
    sh("dpkg-deb", "--extract", deb, tree)
    machines: dict[str, int] = {}
    for folder, _dirs, names in os.walk(tree):
        for name in names:
            path = Path(folder) / name
            if path.is_symlink():
                continue
            head = path.read_bytes()[:20]
            if head[:4] == b"\x7fELF":
                machines[str(path.relative_to(tree))] = int.from_bytes(head[18:20], "little")
    assert all(m == ELF_MACHINES[arch] for m in machines.values()), machines
    # Today every compiled library comes from Debian: the package holds no machine code.
    assert machines == {}


def test_elf_check_refuses_another_machine(tmp_path: Path) -> None:
    so = tmp_path / "opt/bwc-dock/lib/x/_speedups.so"
    so.parent.mkdir(parents=True)
    so.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + (62).to_bytes(2, "little") + bytes(40))
    assert build_deb.check_machine_code(tmp_path, "amd64", build_deb.ARCHES["amd64"]) == 1
    with pytest.raises(build_deb.BuildError, match="not arm64"):
        build_deb.check_machine_code(tmp_path, "arm64", build_deb.ARCHES["arm64"])


# ---- the Debian root ----------------------------------------------------------------------


def depends_packages(deb: Path) -> list[str]:
    """The package names of a .deb's Depends (first of each alternative, no versions)."""
    names = []
    for item in control(deb)["Depends"].split(","):
        first = item.split("|")[0].strip()
        names.append(re.split(r"[\s(:]", first, maxsplit=1)[0])
    return names


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below path (none may be left behind)."""
    prefix = str(path.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def mirror_reachable() -> bool:
    try:
        with urllib.request.urlopen(f"{MIRROR}/dists/{SUITE}/Release", timeout=20) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def make_root_tarball(include: list[str], tarball: Path) -> None:
    """debootstrap a bookworm root with include, and keep it as tarball."""
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        pytest.fail(
            "debootstrap is not installed: scripts/test installs it (apt install debootstrap)"
        )
    if not mirror_reachable():
        pytest.skip(f"cannot reach the Debian mirror {MIRROR} to make the bookworm root")
    work = Path(tempfile.mkdtemp(prefix="make-", dir=CACHE))
    try:
        root = work / "root"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(include)}", SUITE,
             str(root), MIRROR],
            capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"debootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        assert not mounts_below(root), "debootstrap left mounts behind"
        partial = work / "root.tar"
        sh("tar", "--numeric-owner", "-C", root, "-cf", partial, ".")
        partial.rename(tarball)
    finally:
        for point in reversed(mounts_below(work)):
            subprocess.run(["umount", "--lazy", point], check=False)
        shutil.rmtree(work, ignore_errors=True)


def cached_root(include: list[str]) -> Path:
    """The tarball of a root with these packages: made once per machine, then reused."""
    key = hashlib.sha256(f"{SUITE} minbase {MIRROR} {sorted(include)}".encode()).hexdigest()
    tarball = CACHE / f"{SUITE}-{key[:16]}.tar"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker at a time; the others wait and reuse
        prune_cache(keep=tarball)
        if not tarball.exists():
            timed("debootstrap", lambda: make_root_tarball(include, tarball))
        os.utime(tarball)  # in use: not pruned
    return tarball


def prune_cache(keep: Path, days: float = 30) -> None:
    """Roots unused for a month (another include list) and work left by a killed run."""
    cutoff = time.time() - days * 86400
    for old in CACHE.glob(f"{SUITE}-*.tar"):
        if old != keep and old.stat().st_mtime < cutoff:
            old.unlink()
    for work in CACHE.glob("make-*"):
        if work.stat().st_mtime < time.time() - 86400 and not mounts_below(work):
            shutil.rmtree(work, ignore_errors=True)


class Root:
    """An unpacked copy of the cached root, removed afterwards (never with mounts in it)."""

    def __init__(self, tarball: Path, parent: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="root-", dir=parent))
        timed("unpack root", lambda: sh("tar", "--numeric-owner", "-xf", tarball, "-C", self.path))

    def install(self, deb: Path) -> subprocess.CompletedProcess[str]:
        shutil.copyfile(deb, self.path / "tmp/bwc-dock.deb")
        return timed("dpkg -i", lambda: in_root(self.path, "dpkg", "-i", "/tmp/bwc-dock.deb"))

    def file(self, path: str) -> Path:
        return self.path / path.lstrip("/")

    def remove(self) -> None:
        left = mounts_below(self.path)
        assert not left, f"mounts left in the root: {left}"
        shutil.rmtree(self.path)


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: chroot into a Debian root, files owned by other users")
    if shutil.which("unshare") is None or shutil.which("chroot") is None:
        pytest.fail("unshare and chroot (util-linux, coreutils) are needed")


@pytest.fixture(scope="module")
def root_tarball(builds: Builds) -> Path:
    needs_root()
    include = sorted({*depends_packages(builds.get("amd64")), *EXTRA_PACKAGES})
    return cached_root(include)


@pytest.fixture(scope="module")
def installed(
    root_tarball: Path, builds: Builds, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Root]:
    """A root with the amd64 package installed, shared by the read-only checks."""
    root = Root(root_tarball, tmp_path_factory.mktemp("roots"))
    try:
        root.install(builds.get("amd64"))
        yield root
    finally:
        root.remove()


@pytest.fixture
def fresh(root_tarball: Path, builds: Builds, tmp_path: Path) -> Iterator[Root]:
    """A root of its own with the package installed, for a test that changes it."""
    root = Root(root_tarball, tmp_path)
    try:
        root.install(builds.get("amd64"))
        yield root
    finally:
        root.remove()


def owner_mode(root: Root, path: str) -> str:
    return in_root(root.path, "stat", "-c", "%U:%G %a", path).stdout.strip()


def installed_units(root: Root) -> list[str]:
    listed = in_root(root.path, "dpkg", "-L", "bwc-dock").stdout.split()
    return sorted(p for p in listed if "/systemd/system/" in p and p.endswith(UNIT_SUFFIXES))


def verify_units(root: Root, units: list[str]) -> str:
    """systemd-analyze verify: its complaints, '' when there are none. It exits 0 on
    many mistakes (an unknown key, a value it cannot parse), so any output counts."""
    done = in_root(root.path, "systemd-analyze", "verify", *units, check=False)
    return (done.stdout + done.stderr).strip() or ("" if done.returncode == 0 else "failed")


@pytest.mark.timeout(1500)
def test_installs_offline_and_its_commands_run(installed: Root) -> None:
    status = in_root(installed.path, "dpkg-query", "-W", "-f", "${Status}", "bwc-dock")
    assert status.stdout == "install ok installed"
    version = in_root(installed.path, "dock", "--version")
    assert version.stdout.strip() == f"dock {__version__}"
    # The shipped configuration passes the read-only check (WARN: no clock sync, no GPIO
    # in a chroot), and the check makes nothing.
    check = in_root(installed.path, "dock", "--config", "/etc/dock/dock.toml", "check")
    assert "ok   config: /etc/dock/dock.toml" in check.stdout
    assert "FAIL" not in check.stdout
    assert list(installed.file("/var/lib/dock").iterdir()) == []
    assert "usage: dock-web" in in_root(installed.path, "dock-web", "--help").stdout
    assert "usage: dock-hq" in in_root(installed.path, "dock-hq", "--help").stdout


def test_every_module_imports_and_every_requirement_is_met(installed: Root) -> None:
    packaging_lib = Path(packaging.requirements.__file__).parent  # the library, not ours
    shutil.copytree(packaging_lib, installed.file("/tmp/check/packaging"))
    (installed.file("/tmp/check/check.py")).write_text(CHECK_SCRIPT)
    proc = installed.file("/proc")
    sh("mount", "-t", "proc", "proc", proc)  # psutil reads /proc/stat when imported
    try:
        done = in_root(
            installed.path, "python3", "-I", "/tmp/check/check.py", *build_deb.LEFT_OUT,
            check=False,
        )  # fmt: skip
    finally:
        sh("umount", proc)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("ok:"), done.stdout


#: Run in the root as the package runs the dock (python3 -I, its lib first on the path,
#: from another folder): an offload worker forked by its fork server, and one started on
#: its own, each serve a job (issue 15: ``python -m`` found no ``dock`` there).
WORKER_SCRIPT = """
import sys
sys.path.insert(0, "/opt/bwc-dock/lib")
import subprocess
from dock.daemon.offload_process import worker_command
from dock.daemon.worker_forks import ForkServer
from dock.evidence.bulk_copy import MAX_JOB, decode_line, encode_line
job = {"t": "job", "url": "emulated:/tmp/nobody.sock", "serial": "X", "jobs": []}
server = ForkServer(worker_command("serve_forks"))
server.start()
alone = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
for worker in (server.fork(), alone):
    worker.stdin.write(encode_line(job, MAX_JOB))
    worker.stdin.flush()
    print(decode_line(worker.stdout.readline())["t"], flush=True)
    worker.kill()
    worker.wait(timeout=30)
server.close()
"""


def test_offload_workers_start_as_the_package_runs_the_dock(installed: Root) -> None:
    script = installed.file("/tmp/offload-worker/check.py")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(WORKER_SCRIPT)
    done = in_root(installed.path, "python3", "-I", "/tmp/offload-worker/check.py", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["fatal", "fatal"], done.stdout + done.stderr


#: Run in the root: imports every module of the project, then checks every requirement
#: of bwc-dock and its libraries (pip check, without pip) against what is installed there.
CHECK_SCRIPT = """
import importlib, pkgutil, sys
sys.path.insert(0, "/opt/bwc-dock/lib")
sys.path.append("/tmp/check")
from importlib.metadata import PackageNotFoundError, distribution
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

problems, modules = [], 0
for top in ("common", "dock", "firmware_protocol", "hardware", "hq", "mqtt_contract",
            "web_status"):
    package = importlib.import_module(top)
    for info in pkgutil.walk_packages(package.__path__, top + "."):
        if info.name.endswith(".__main__"):
            continue
        modules += 1
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            problems.append(f"import {info.name}: {type(exc).__name__}: {exc}")

left_out = {canonicalize_name(n) for n in sys.argv[1:]}
todo, seen = ["bwc-dock"], set()
while todo and len(seen) < 500:
    name = todo.pop()
    if canonicalize_name(name) in seen:
        continue
    seen.add(canonicalize_name(name))
    for text in distribution(name).requires or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if canonicalize_name(req.name) in left_out:
            continue
        try:
            have = distribution(req.name).version
        except PackageNotFoundError:
            problems.append(f"{name} needs {req}: not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            problems.append(f"{name} needs {req}: {have} installed")
        todo.append(req.name)
print("\\n".join(problems) if problems else f"ok: {modules} modules, {len(seen)} distributions")
sys.exit(1 if problems else 0)
"""


def test_installed_units_pass_systemd_analyze_verify(installed: Root) -> None:
    units = installed_units(installed)
    names = {Path(u).name for u in units}
    assert {"dock.service", "dock-web.service", "dock-hq.service"} <= names
    assert verify_units(installed, units) == ""
    # The check itself catches a broken unit, including what verify only warns about.
    broken = installed.file("/tmp/broken.service")
    broken.write_text("[Service]\nExecStart=/usr/bin/dock run\nProtectSystem=bogus\n")
    assert "bogus" in verify_units(installed, ["/tmp/broken.service"])
    broken.write_text("[Service]\nExecStart=/usr/bin/no-such-command\n")
    assert "no-such-command" in verify_units(installed, ["/tmp/broken.service"])


def test_users_groups_folders_and_modes(installed: Root) -> None:
    dock = in_root(installed.path, "id", "-nG", "dock").stdout.split()
    assert dock[0] == "dock"
    groups = in_root(installed.path, "getent", "group").stdout
    for group in ("dialout", "plugdev", "gpio", "input"):
        exists = re.search(rf"^{group}:", groups, re.M) is not None
        assert (group in dock) == exists, group  # every one this system has, no other
    passwd = in_root(installed.path, "getent", "passwd", "dock", "dock-hq").stdout.splitlines()
    assert passwd[0].split(":")[5:] == ["/var/lib/dock", "/usr/sbin/nologin"]
    assert passwd[1].split(":")[5:] == ["/var/lib/dock-hq", "/usr/sbin/nologin"]
    assert int(passwd[0].split(":")[2]) < 1000  # system users
    assert not installed.file("/var/lib/dock-hq").exists()  # systemd makes it (StateDirectory)
    assert owner_mode(installed, "/var/lib/dock") == "dock:dock 710"
    assert owner_mode(installed, "/srv/evidence") == "dock:dock 750"
    assert owner_mode(installed, "/etc/dock") == "root:dock 750"
    assert owner_mode(installed, "/etc/dock/dock.toml") == "root:dock 640"
    assert owner_mode(installed, "/etc/dock-hq") == "root:dock-hq 750"


def test_dock_and_dock_web_enabled_dock_hq_not(installed: Root) -> None:
    wants = installed.file("/etc/systemd/system/multi-user.target.wants")
    enabled = {p.name for p in wants.iterdir()}
    assert {"dock.service", "dock-web.service"} <= enabled
    assert "dock-hq.service" not in enabled
    assert os.readlink(wants / "dock.service").endswith("/systemd/system/dock.service")


def state_files(root: Root, folder: str) -> dict[str, str]:
    """relative path -> sha256 of every file in a folder of the root."""
    base = root.file(folder)
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


@pytest.mark.timeout(900)
def test_upgrade_keeps_configuration_and_data_purge_keeps_data(fresh: Root, builds: Builds) -> None:
    # The dock's data as the dock makes it (`dock status` as root: the dock user's files).
    in_root(fresh.path, "dock", "--config", "/etc/dock/dock.toml", "status")
    data = state_files(fresh, "/var/lib/dock")
    assert {"dock.db", "audit.db", "signing.key"} <= set(data)
    state = fresh.file("/var/lib/dock")
    assert {p.stat().st_uid for p in state.rglob("*")} == {state.stat().st_uid}
    # The administrator's edit: the state and evidence folders elsewhere.
    config = fresh.file("/etc/dock/dock.toml")
    edited = config.read_text().replace('state_dir = "/var/lib/dock"', 'state_dir = "/srv/state"')
    edited = edited.replace('evidence_dir = "/srv/evidence"', 'evidence_dir = "/mnt/evidence"')
    edited = edited.replace("# audit_checkpoint_copy =", "audit_checkpoint_copy =")
    assert edited.count("/srv/state") == 1 and edited.count("/mnt/evidence") == 1
    assert 'audit_checkpoint_copy = "/srv/dock-audit/checkpoint.json"' in edited
    config.write_text(edited)
    # What a `dock status` run as root by an older release left in the new state folder,
    # and an evidence folder that is not the dock's, with footage in it.
    in_root(fresh.path, "sh", "-c", "mkdir -p /srv/state /mnt/evidence && "
            "echo db > /srv/state/dock.db && echo footage > /mnt/evidence/rec.mp4")  # fmt: skip

    upgraded = fresh.install(builds.get("amd64", revision="2"))
    version = in_root(fresh.path, "dpkg-query", "-W", "-f", "${Version}", "bwc-dock").stdout
    assert version == f"{__version__}-2"
    assert config.read_text() == edited  # the conffile is the administrator's
    assert owner_mode(fresh, "/etc/dock/dock.toml") == "root:dock 640"
    assert state_files(fresh, "/var/lib/dock") == data
    assert owner_mode(fresh, "/srv/state") == "dock:dock 710"
    assert owner_mode(fresh, "/srv/dock-audit") == "dock:dock 700"
    assert owner_mode(fresh, "/srv/state/dock.db") == "dock:dock 644"  # given back
    assert owner_mode(fresh, "/mnt/evidence") == "root:root 755"  # never changed...
    assert owner_mode(fresh, "/mnt/evidence/rec.mp4") == "root:root 644"
    warnings = [ln for ln in upgraded.stderr.splitlines() if "/mnt/evidence" in ln]
    assert len(warnings) == 1 and "not dock" in warnings[0], upgraded.stderr  # ...warned about
    assert in_root(fresh.path, "dock", "--version").stdout.strip() == f"dock {__version__}"

    in_root(fresh.path, "dpkg", "--purge", "bwc-dock")
    assert not config.exists()
    assert state_files(fresh, "/var/lib/dock") == data  # purge deletes no data
    assert fresh.file("/srv/state/dock.db").read_text() == "db\n"
    assert fresh.file("/mnt/evidence/rec.mp4").read_text() == "footage\n"
    assert in_root(fresh.path, "getent", "passwd", "dock").stdout.startswith("dock:")
    wants = fresh.file("/etc/systemd/system/multi-user.target.wants")
    assert not {"dock.service", "dock-web.service"} & {p.name for p in wants.iterdir()}
    assert not fresh.file("/opt/bwc-dock").exists()
