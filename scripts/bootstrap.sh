#!/usr/bin/env bash
# Shared set-up for scripts/demo and scripts/test: system packages, virtualenv,
# Python packages. Idempotent: a second run with nothing changed does nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DOCK_VENV:-$ROOT/.venv}"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || { log "no apt-get: install $* yourself"; return 1; }
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_python() {
  if ! command -v python3 >/dev/null; then
    log "installing python3"
    apt_install python3 python3-venv
  fi
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    log "Python 3.11 or newer is required (found $(python3 --version))"; exit 1; }
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    log "installing python3-venv"
    apt_install python3-venv
  fi
}

ensure_mosquitto() {
  if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    log "installing the mosquitto broker (used by the MQTT tests)"
    apt_install mosquitto || log "mosquitto unavailable: MQTT tests will be skipped"
  fi
}

ensure_chromium() {
  # The web site's browser tests drive Debian's chromium through Playwright, which must
  # never download a browser of its own (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD in ensure_venv).
  if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium (the web site's browser tests)"
    apt_install chromium fonts-wqy-microhei \
      || log "chromium unavailable: the browser tests will be skipped"
  fi
}

ensure_build_deps() {
  # systemd-python (sd_notify for the dock service) has no wheel: pip builds it against
  # libsystemd (its headers, through pkg-config) with a C compiler and Python's headers.
  local include
  include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  if ! pkg-config --exists libsystemd 2>/dev/null || ! command -v cc >/dev/null \
      || [ ! -f "$include/Python.h" ]; then
    log "installing libsystemd-dev, pkg-config, gcc, python3-dev (to build systemd-python)"
    apt_install libsystemd-dev pkg-config gcc python3-dev
  fi
}

ensure_debootstrap() {
  # tests/test_package.py installs the Debian package into a bookworm root it makes with
  # debootstrap (cached under /var/cache/bwc-dock-tests); only root can use it.
  if [ "$(id -u)" -eq 0 ] && ! command -v debootstrap >/dev/null \
    && [ ! -x /usr/sbin/debootstrap ]; then
    log "installing debootstrap (the package installation test)"
    apt_install debootstrap || log "debootstrap unavailable: the installation test will fail"
  fi
}

ensure_unit_tools() {
  # tests/test_unit_sandbox.py rebuilds each unit's sandbox (its seccomp filters through
  # Debian's python3-seccomp); tests/test_units_boot.py boots systemd in systemd-nspawn
  # and runs the units there (python3-systemd for the daemon's sd_notify). Root only.
  [ "$(id -u)" -eq 0 ] || return 0
  local missing=()
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v setpriv >/dev/null || missing+=(util-linux)
  /usr/bin/python3 -c 'import seccomp' 2>/dev/null || missing+=(python3-seccomp)
  /usr/bin/python3 -c 'import systemd.daemon' 2>/dev/null || missing+=(python3-systemd)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (the units' sandbox and boot tests)"
    apt_install "${missing[@]}" || log "unavailable: the units' sandbox tests will be skipped"
  fi
}

ensure_dosfstools() {
  # tests/test_ums_*.py make FAT images of mass-storage cameras with mkfs.vfat (dosfstools)
  # and fill them with mcopy (mtools), unmounted; without them those tests skip.
  local missing=()
  command -v mkfs.vfat >/dev/null || [ -x /usr/sbin/mkfs.vfat ] || [ -x /sbin/mkfs.vfat ] \
    || missing+=(dosfstools)
  command -v mcopy >/dev/null || missing+=(mtools)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (the mass-storage camera tests' FAT images)"
    apt_install "${missing[@]}" || log "unavailable: the FAT image tests will be skipped"
  fi
}

ensure_sshd() {
  # tests/test_replication_sftp.py starts its own OpenSSH sshd (own config, keys and port
  # on 127.0.0.1; never the system's). Installing openssh-server may enable a system sshd
  # on port 22: the tests never use it. policy-rc.d, where present, keeps it stopped.
  if [ ! -x /usr/sbin/sshd ] && ! command -v sshd >/dev/null; then
    log "installing openssh-server (the SFTP replication tests' server)"
    apt_install openssh-server || log "openssh-server unavailable: the SFTP tests will be skipped"
  fi
  # the dock's SFTP transport runs OpenSSH's own client (dock/replicas/openssh_link.py)
  if [ ! -x /usr/bin/ssh ] && ! command -v ssh >/dev/null; then
    log "installing openssh-client (the SFTP replication transport)"
    apt_install openssh-client || log "openssh-client unavailable: its SFTP tests will be skipped"
  fi
}

ensure_smbd() {
  # tests/test_replica_smb.py starts its own Samba smbd (own smb.conf, passdb, folders and
  # port on 127.0.0.1; never the system's). Root only (smbd switches to the share's user).
  [ "$(id -u)" -eq 0 ] || return 0
  if [ ! -x /usr/sbin/smbd ] && ! command -v smbd >/dev/null; then
    log "installing samba (the SMB replication tests' server)"
    apt_install samba || log "samba unavailable: the SMB replication tests will be skipped"
  fi
}

ensure_s3_server() {
  # tests/test_replica_s3.py starts a real S3 server: Debian's Ceph (one monitor, one
  # memstore OSD, no manager) and its S3 gateway radosgw, on 127.0.0.1 under a temporary
  # folder (~15 s). About 60 MB of packages; no system Ceph is configured or started.
  # moto's S3 stand-in comes with the test extras (ensure_venv test).
  [ "$(id -u)" -eq 0 ] || return 0
  if ! command -v radosgw >/dev/null || ! command -v ceph-osd >/dev/null \
      || ! command -v ceph-mon >/dev/null || ! command -v radosgw-admin >/dev/null; then
    log "installing Ceph's radosgw, ceph-mon, ceph-osd (the S3 replication tests' server)"
    apt_install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common \
      || log "ceph unavailable: the S3 tests run against moto only"
  fi
}

# ensure_venv EXTRAS: create the virtualenv and install the project with extras.
ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  local want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing Python packages ($extras)"
    ensure_build_deps
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    if [ "$extras" = "run" ]; then
      "$VENV/bin/python" -m pip install -q -e "$ROOT"
    else
      "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
    fi
    echo "$want" > "$stamp"
  fi
}
