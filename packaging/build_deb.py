"""Build the Debian package ``bwc-dock_<version>-<revision>_<arch>.deb`` (scripts/build-deb).

The package holds the project's code and its pure-Python libraries in
``/opt/bwc-dock/lib``, the ``dock``, ``dock-web`` and ``dock-hq`` commands in
``/usr/bin``, the files named in ``packaging/files.list`` and the maintainer scripts in
``packaging/debian/``. Nothing is compiled: a package for another architecture is built
the same way, and only its wheels could differ. The result is made with ``dpkg-deb
--root-owner-group`` (every file root's); the scripts give ``dock`` its folders.

Which libraries come from where (looked up on PyPI for aarch64 and armv7l, 2026-11):

* psutil: abi3 wheels for x86_64 and aarch64, none for armv7l;
* cryptography: abi3 wheels for all three, but it needs cffi, whose wheels are built
  for one Python (cp311) and do not exist for armv7l at all;
* evdev: no wheels at all (built against the kernel headers);
* MarkupSafe: wheels for one Python each (cp311), no abi3;
* systemd-python: no wheels;
* zlib-ng: wheels for one Python each, none for armv7l.

So every compiled library comes from Debian (``FROM_DEBIAN``), on every architecture:
one set of versions for amd64, arm64 and armhf (what the amd64 test installs is what a
Pi runs), security updates through apt, and no wheel tied to Python 3.11 that would
break on the next Debian's python3. Debian's versions are older than PyPI's; the floors
in pyproject.toml are what the code uses, and Debian bookworm meets them. zlib-ng is
left out (``firmware_protocol/framing.py`` falls back to zlib). The per-architecture
part that remains is the ``Architecture:`` field, the wheel platform tags asked for
and the ELF check: a binary wheel for another machine is refused, never packaged.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGING = REPO / "packaging"
PACKAGE = "bwc-dock"
LIB = "/opt/bwc-dock/lib"
#: The commands put in /usr/bin, each running the [project.scripts] entry point of its name.
COMMANDS = ("dock", "dock-web", "dock-hq")
#: The Python the bundled code is made for: Debian bookworm's and Raspberry Pi OS's.
PYTHON_VERSION = "3.11"

#: Compiled libraries, by their PyPI name: the Debian package that brings them instead.
FROM_DEBIAN = {
    "cryptography": "python3-cryptography (>= 38)",
    "psutil": "python3-psutil (>= 5.9)",
    "evdev": "python3-evdev (>= 1.6)",
    "markupsafe": "python3-markupsafe (>= 2.1.1)",
    "systemd-python": "python3-systemd",
    # SFTP replication targets; paramiko is pure Python but needs bcrypt, pynacl and
    # cryptography (compiled): Debian's whole stack (bookworm: 2.12, which the code supports)
    "paramiko": "python3-paramiko (>= 2.12)",
    # S3 replication targets: boto3 is pure Python, but botocore's data is large and
    # Debian's stack (boto3 1.26, botocore 1.29, s3transfer, urllib3) gets security
    # updates; dock/replicas/s3.py uses only what 1.29 has. botocore wants
    # python-dateutil < 3, so python-requirements.txt bundles 2.9.0.post0.
    "boto3": "python3-boto3 (>= 1.26)",
}
#: Requirements of the project (or of its libraries) that the package leaves out, and why.
LEFT_OUT = {
    "zlib-ng": "optional: firmware_protocol/framing.py falls back to zlib; no abi3 wheel",
    "pip": "sqlite-utils' own `install` command only, never used by the dock",
    "setuptools": "colorzero declares it but does not import it",
}
#: What the package needs besides the libraries above: pyusb reaches USB through libusb.
BASE_DEPENDS = ("python3 (>= 3.11)", "adduser", "libusb-1.0-0")


@dataclass(frozen=True)
class Arch:
    """A Debian architecture: its ELF machine and the wheel platform tags that fit it."""

    elf_machine: int
    wheel_machine: str

    def platforms(self) -> list[str]:
        """pip's --platform tags for glibc 2.36 (bookworm), oldest first."""
        m = self.wheel_machine
        return [f"manylinux2014_{m}"] + [f"manylinux_2_{v}_{m}" for v in (28, 31, 34, 36)]


ARCHES = {
    "amd64": Arch(elf_machine=62, wheel_machine="x86_64"),  # EM_X86_64
    "arm64": Arch(elf_machine=183, wheel_machine="aarch64"),  # EM_AARCH64
    "armhf": Arch(elf_machine=40, wheel_machine="armv7l"),  # EM_ARM
}


class BuildError(Exception):
    """The package cannot be built; the message says why in one line."""


@dataclass(frozen=True)
class Entry:
    """One line of packaging/files.list."""

    source: Path
    destination: str
    mode: int


def read_files_list(path: Path, repo: Path) -> list[Entry]:
    """The lines of files.list (``source destination mode``), each source checked."""
    entries: list[Entry] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path.name} line {number}"
        fields = line.split()
        if len(fields) != 3:
            raise BuildError(f"{where}: want 'source destination mode', got {line!r}")
        source, destination, mode_text = fields
        if not destination.startswith("/") or ".." in destination.split("/"):
            raise BuildError(f"{where}: destination {destination!r} is not an absolute path")
        if destination in seen:
            raise BuildError(f"{where}: {destination} is listed twice")
        if not re.fullmatch(r"0?[0-7]{3,4}", mode_text):
            raise BuildError(f"{where}: mode {mode_text!r} is not octal like 0644")
        src = repo / source
        if not src.is_file():
            raise BuildError(f"{where}: source file {source} is missing")
        seen.add(destination)
        entries.append(Entry(src, destination, int(mode_text, 8)))
    return entries


def debian_version(python_version: str, revision: str) -> str:
    """0.1.0 -> 0.1.0-1; a pre-release sorts before its release (0.2.0rc1 -> 0.2.0~rc1-1)."""
    if not re.fullmatch(r"[0-9A-Za-z.+~]+", revision):
        raise BuildError(f"revision {revision!r}: letters, digits and . + ~ only")
    upstream = re.sub(r"(\d)\.?((?:a|b|rc|dev)\d*)", r"\1~\2", python_version)
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+~]*", upstream):
        raise BuildError(f"version {python_version!r} cannot be a Debian version")
    return f"{upstream}-{revision}"


def run(cmd: Sequence[str | Path], what: str) -> None:
    """Run a build step quietly; its output is shown only when it fails."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise BuildError(f"{what} failed (exit {done.returncode}): {' '.join(map(str, cmd))}")


def copy_sources(repo: Path, dest: Path) -> None:
    """The files a wheel is built from, without the checkout's caches and virtualenv, so
    the build writes nothing into the working tree (pip builds in the source folder)."""
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
    )
    shutil.copytree(repo, dest, ignore=skip, symlinks=True)


def build_project_wheel(pip: list[str], repo: Path, work: Path) -> Path:
    """The project's own wheel (pure Python), built from a copy of the sources."""
    src = work / "src"
    copy_sources(repo, src)
    out = work / "project-wheel"
    run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", out, src], "building the wheel")
    wheels = sorted(out.glob("bwc_dock-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one bwc_dock wheel, found {[w.name for w in wheels]}")
    return wheels[0]


def wheel_fits(name: str, arch: Arch) -> bool:
    """A wheel for any machine (``none-any``), or abi3 for this architecture's machine."""
    tags = name.removesuffix(".whl").split("-")[-3:]
    abi, platform = tags[1], tags[2]
    if abi == "none" and platform == "any":
        return True
    return abi == "abi3" and all(p.endswith(arch.wheel_machine) for p in platform.split("."))


def platform_options(arch: Arch) -> list[str]:
    """pip's options that choose wheels for the target instead of this machine."""
    opts = ["--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp"]
    for p in arch.platforms():
        opts += ["--platform", p]
    return opts


def fetch_libraries(pip: list[str], arch: Arch, work: Path) -> list[Path]:
    """The exact, hashed libraries of packaging/python-requirements.txt."""
    out = work / "wheels"
    reqs = PACKAGING / "python-requirements.txt"
    run(
        [*pip, "download", "--quiet", "--no-deps", "--require-hashes", "-r", reqs,
         "--dest", out, *platform_options(arch)],
        "downloading the libraries",
    )  # fmt: skip
    wheels = sorted(out.glob("*.whl"))
    for w in wheels:
        if not wheel_fits(w.name, arch):
            raise BuildError(f"{w.name} is built for one Python or another machine: not packaged")
    return wheels


def install_libraries(pip: list[str], arch: Arch, wheels: list[Path], lib: Path) -> None:
    """Unpack the wheels into the package's lib folder (no scripts, no byte code: the
    postinst compiles for the target's own python3)."""
    run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", "--no-compile",
         "--target", lib, *platform_options(arch), *wheels],
        "installing the libraries",
    )  # fmt: skip
    # Not code: console scripts made for this machine's python, and manual pages.
    for extra in ("bin", "share"):
        shutil.rmtree(lib / extra, ignore_errors=True)


def entry_points(repo: Path) -> dict[str, str]:
    """[project.scripts] of pyproject.toml: command -> ``module:function``."""
    with (repo / "pyproject.toml").open("rb") as f:
        scripts: dict[str, str] = tomllib.load(f)["project"]["scripts"]
    return scripts


def wrapper(command: str, target: str) -> str:
    """/usr/bin/<command>: Debian's python3 in isolated mode, the package's lib first."""
    module, _, function = target.partition(":")
    if not re.fullmatch(r"[\w.]+", module) or not function.isidentifier():
        raise BuildError(f"[project.scripts] {command} = {target!r}: want module:function")
    return (
        "#!/usr/bin/python3 -I\n"
        f"# {command}: installed by the {PACKAGE} Debian package (scripts/build-deb).\n"
        "# Isolated (-I): no PYTHONPATH, no user site-packages, not the current folder; only\n"
        f"# the package's code ({LIB}, first) and Debian's python3 modules.\n"
        "import sys\n\n"
        f'sys.path.insert(0, "{LIB}")\n'
        f"from {module} import {function}  # noqa: E402\n\n"
        f"sys.exit({function}())\n"
    )


def walk(root: Path) -> Iterator[Path]:
    """Every file and folder below root, sorted (the package lists them in this order)."""
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            yield Path(folder) / name


def check_machine_code(root: Path, arch_name: str, arch: Arch) -> int:
    """Every ELF file must be for the target machine; returns how many there are."""
    count = 0
    for path in walk(root):
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            head = f.read(20)
        if head[:4] != b"\x7fELF":
            continue
        count += 1
        machine = int.from_bytes(head[18:20], "big" if head[5] == 2 else "little")
        if machine != arch.elf_machine:
            rel = path.relative_to(root)
            raise BuildError(f"/{rel} is machine code for ELF machine {machine}, not {arch_name}")
    return count


def fill_control(template: str, fields: dict[str, str]) -> str:
    """The control template without its comments, @NAME@ replaced."""
    lines = [ln for ln in template.splitlines() if not ln.startswith("#")]
    text = "\n".join(lines).strip() + "\n"
    for key, value in fields.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise BuildError(f"control template: no value for {', '.join(left)}")
    return text


def installed_size_kib(root: Path) -> int:
    """Installed-Size: KiB, each file rounded up, each folder one (as dpkg-gencontrol)."""
    total = 0
    for path in walk(root):
        if path.is_relative_to(root / "DEBIAN"):
            continue
        total += 1 if path.is_dir() else -(-path.lstat().st_size // 1024)
    return total


def write_debian(root: Path, version: str, arch_name: str, conffiles: list[str]) -> None:
    """DEBIAN/: control, conffiles, md5sums and the maintainer scripts."""
    debian = root / "DEBIAN"
    debian.mkdir()
    for script in ("postinst", "prerm", "postrm"):
        shutil.copyfile(PACKAGING / "debian" / script, debian / script)
        (debian / script).chmod(0o755)
    sums = []
    for path in walk(root):
        rel = str(path.relative_to(root))
        if not path.is_file() or path.is_symlink() or rel.startswith("DEBIAN/"):
            continue
        if "/" + rel not in conffiles:  # dpkg keeps conffiles' sums itself
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel}\n")
    (debian / "md5sums").write_text("".join(sums))
    if conffiles:
        (debian / "conffiles").write_text("".join(f"{c}\n" for c in conffiles))
    depends = [*BASE_DEPENDS, *FROM_DEBIAN.values()]
    control = fill_control(
        (PACKAGING / "debian" / "control").read_text(encoding="utf-8"),
        {
            "VERSION": version,
            "ARCH": arch_name,
            "DEPENDS": ", ".join(depends),
            "INSTALLED_SIZE": str(installed_size_kib(root)),
        },
    )
    (debian / "control").write_text(control)
    for path in (debian / "control", debian / "md5sums", debian / "conffiles"):
        if path.exists():
            path.chmod(0o644)


def put(root: Path, destination: str, data: bytes, mode: int) -> None:
    """A file in the package tree, its folders made (0755)."""
    path = root / destination.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def normalise_modes(root: Path, keep: set[Path]) -> None:
    """Folders 0755, files 0644 (0755 when executable), except those listed with a mode."""
    for path in walk(root):
        if path.is_symlink() or path in keep:
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)


def build(arch_name: str, out_dir: Path, revision: str, pip: list[str]) -> Path:
    """Build the package for ``arch_name`` into ``out_dir``; returns the .deb's path."""
    if arch_name not in ARCHES:
        raise BuildError(f"--arch {arch_name}: one of {', '.join(ARCHES)}")
    arch = ARCHES[arch_name]
    entries = read_files_list(PACKAGING / "files.list", REPO)
    scripts = entry_points(REPO)
    missing = [c for c in COMMANDS if c not in scripts]
    if missing:
        raise BuildError(f"pyproject.toml [project.scripts] has no {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="build-deb-") as tmp:
        work = Path(tmp)
        root = work / "root"
        lib = root / LIB.lstrip("/")
        project = build_project_wheel(pip, REPO, work)
        python_version = project.name.split("-")[1]
        version = debian_version(python_version, revision)
        install_libraries(pip, arch, [project, *fetch_libraries(pip, arch, work)], lib)
        normalise_modes(root, set())
        keep: set[Path] = set()
        for command in COMMANDS:
            put(root, f"/usr/bin/{command}", wrapper(command, scripts[command]).encode(), 0o755)
        for e in entries:
            put(root, e.destination, e.source.read_bytes(), e.mode)
            keep.add(root / e.destination.lstrip("/"))
        copyright_text = (PACKAGING / "debian" / "copyright").read_bytes()
        put(root, f"/usr/share/doc/{PACKAGE}/copyright", copyright_text, 0o644)
        normalise_modes(root, keep)
        elf = check_machine_code(root, arch_name, arch)
        conffiles = sorted(e.destination for e in entries if e.destination.startswith("/etc/"))
        write_debian(root, version, arch_name, conffiles)
        out_dir.mkdir(parents=True, exist_ok=True)
        deb = out_dir / f"{PACKAGE}_{version}_{arch_name}.deb"
        run(["dpkg-deb", "--root-owner-group", "--build", root, deb], "dpkg-deb")
    print(f"build-deb: {deb.name}: {elf} machine-code files, {len(entries)} from files.list",
          file=sys.stderr)  # fmt: skip
    return deb


def host_arch() -> str:
    """This machine's Debian architecture (the default target)."""
    try:
        done = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(f"cannot ask dpkg for this machine's architecture: {exc}") from None
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """scripts/build-deb: prints the path of the package made."""
    p = argparse.ArgumentParser(prog="build-deb", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", choices=sorted(ARCHES), help="target (default: this machine's)")
    p.add_argument("--out", type=Path, default=REPO / "dist", help="folder for the .deb")
    p.add_argument("--revision", default="1", help="Debian revision (default 1)")
    args = p.parse_args(argv)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    try:
        if shutil.which("dpkg-deb") is None:
            raise BuildError("dpkg-deb not found: install dpkg (Debian) to build the package")
        deb = build(args.arch or host_arch(), args.out.resolve(), args.revision, pip)
    except BuildError as exc:
        print(f"build-deb: {exc}", file=sys.stderr)
        return 1
    print(deb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
