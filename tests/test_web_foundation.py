"""The web site's foundation (issue 12): login through the daemon, roles on every route,
CSRF, errors as pages, inert recorder text, and dock-web as a real process."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from dock.domain.roles import ROLES
from dock.services import web_tokens
from dock.storage.pins import PIN_TRIES
from dock.storage.schema import SCHEMA_VERSION
from dock.storage.store import Store
from web_status.auth import PUBLIC, routes_and_roles

from .web_harness import DESKTOP, KIOSK, PEOPLE, login

#: Every route anyone may open without logging in. A new public route must be added here
#: on purpose (the kiosk's, reached from the dock's own screen, are the kiosk's to add).
PUBLIC_ROUTES = {
    "/login",
    "/logout",
    "/lang/<code>",
    "/static/<path:filename>",
    "/api/v1/openapi.json",
    # the kiosk: no login, but only from [web] kiosk_allowed_from (the dock's own screen)
    "/kiosk",
    "/kiosk/slots",
    "/kiosk/checkout",
    "/kiosk/cancel",
    "/kiosk/handover",  # who returned a recorder signs: number and PIN, checked by the daemon
    "/officer/pages.css",  # a stylesheet
}
HOSTILE = "<script>alert(1)</script>\x1b[31mRED\x1b[0m"


def csrf_of(client: Any, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


def log_in(client: Any, who: str, pin: str | None = None) -> Any:
    number, right, _ = PEOPLE[who]
    token = csrf_of(client)
    return client.post(
        "/login", data={"officer": number, "pin": right if pin is None else pin,
                        "csrf_token": token}
    )  # fmt: skip


def concrete(rule: str) -> str:
    """A URL for ``rule`` with every parameter filled (an ``any(...)`` by its first)."""
    rule = re.sub(r"<any\(([^,)]+)[^>]*>", lambda m: m.group(1).strip(), rule)
    return re.sub(r"<[^>]+>", "1", rule)


# --------------------------------------------------------------------------- browser
def test_login_and_home_in_a_browser(web_dock, page, screenshot) -> None:
    for lang in ("zh", "en"):
        for size, name in ((KIOSK, "kiosk"), (DESKTOP, "desktop")):
            page.set_viewport_size(size)
            page.goto(f"{web_dock.url}/lang/{lang}")
            screenshot(page, f"login-{lang}-{name}")
    login(page, web_dock, "officer", pin="135792")
    assert "4" in page.inner_text(".error")  # tries left, in the page's language (en)
    login(page, web_dock, "officer")
    assert page.url.endswith("/")
    assert "Wang Wei" in page.inner_text("header")
    for lang in ("zh", "en"):
        for size, name in ((KIOSK, "kiosk"), (DESKTOP, "desktop")):
            page.set_viewport_size(size)
            page.goto(f"{web_dock.url}/lang/{lang}")
            screenshot(page, f"home-{lang}-{name}")
    assert "EMU0001" in page.inner_text("table.grid")
    page.click("header button")  # log out
    page.goto(web_dock.url + "/")
    assert "/login" in page.url


def test_the_start_page_grid_follows_the_dock_without_reloading(web_dock, page, screenshot) -> None:
    """A slot granted while the page is open shows as granted within a few polls, in the
    page's language, and the page was never reloaded."""
    login(page, web_dock, "supervisor")
    page.goto(f"{web_dock.url}/lang/zh")
    page.evaluate("window.__same_page = true")
    decision = web_dock.svc.checkout("1001", PEOPLE["officer"][1])
    assert decision.granted
    row = f"table.grid tr[data-slot='{decision.slot}']"
    page.wait_for_selector(row, timeout=15_000)  # drawn by home.js, not by the server
    page.wait_for_function(
        f"document.querySelector(\"{row}\").innerText.includes('已授权')", timeout=15_000
    )
    assert page.evaluate("window.__same_page") is True
    screenshot(page, "home-live-zh-desktop")


# --------------------------------------------------------------------------- login
def test_wrong_pins_lock_as_on_the_command_line_and_are_audited(web_dock) -> None:
    """003 art.21(2): wrong PINs on the site lock as on the command line, audited."""
    client = web_dock.app.test_client()
    client.get("/lang/en")
    for left in range(PIN_TRIES - 1, 0, -1):
        page = log_in(client, "officer", pin="135792").get_data(as_text=True)
        assert f"{left} tries left" in page
    page = log_in(client, "officer", pin="135792").get_data(as_text=True)
    assert "locked" in page
    page = log_in(client, "officer").get_data(as_text=True)  # the right PIN: still locked
    assert "locked" in page and "Traceback" not in page
    assert web_dock.svc.store.pin_locked("1001")
    kinds = [e.kind for e in web_dock.svc.audit.entries()]
    assert kinds.count("web_login_refused") == PIN_TRIES + 1
    assert "pin_locked" in kinds and "web_login" not in kinds


def test_login_logout_and_the_daemons_session(web_dock) -> None:
    client = web_dock.app.test_client()
    assert log_in(client, "supervisor").status_code == 302
    me = client.get("/api/v1/session").get_json()
    assert me["person"] == {"id": "9001", "name": "Zhao Min", "roles": ["officer", "supervisor"]}
    entries = web_dock.svc.audit.entries()
    assert [(e.kind, e.actor) for e in entries if e.kind == "web_login"] == [("web_login", "9001")]
    client.post("/logout", data={"csrf_token": csrf_of(client, "/")})
    assert client.get("/api/v1/session").status_code == 401
    assert len(web_dock.sessions._by_digest) == 0  # the daemon forgot the token
    assert "web_logout" in [e.kind for e in web_dock.svc.audit.entries()]


# --------------------------------------------------------------------------- routes
def test_every_route_declares_roles_and_needs_a_login_unless_public(web_dock) -> None:
    """002 art.22, 25; 001 art.15, 19; 003 art.12: usage rights follow duty and post: every route
    declares its roles and needs a login."""
    declared = routes_and_roles(web_dock.app)
    assert all(roles is not None for roles in declared.values()), declared
    public = {rule for rule, roles in declared.items() if roles == PUBLIC}
    assert public <= PUBLIC_ROUTES, public - PUBLIC_ROUTES  # none public by accident
    client = web_dock.app.test_client()
    for rule, _roles in declared.items():
        if rule in PUBLIC_ROUTES:
            continue
        reply = client.get(concrete(rule))
        if reply.status_code == 405:  # POST only: refused before its view runs
            reply = client.post(concrete(rule), headers={"X-CSRF-Token": csrf_of(client)})
        if rule.startswith("/api/"):
            assert reply.status_code == 401, rule
        else:
            assert reply.status_code == 302 and "/login" in reply.headers["Location"], rule


@pytest.mark.parametrize("who", ["officer", "supervisor", "maintenance", "admin"])
def test_each_role_is_refused_the_routes_of_other_roles(web_dock, who) -> None:
    """002 art.22, 25; 001 art.15, 19; 003 art.12: each role is refused the routes of other
    roles."""
    client = web_dock.app.test_client()
    assert log_in(client, who).status_code == 302
    held = set(client.get("/api/v1/session").get_json()["person"]["roles"])
    token = csrf_of(client, "/")
    for rule, roles in routes_and_roles(web_dock.app).items():
        if roles == PUBLIC or roles is None or held & set(roles):
            continue
        reply = client.get(concrete(rule))
        if reply.status_code == 405:
            reply = client.post(concrete(rule), headers={"X-CSRF-Token": token})
        assert reply.status_code == 403, (who, rule, roles)


def test_the_daemon_refuses_a_request_the_persons_roles_may_not_make(web_dock) -> None:
    """002 art.22, 25; 002 art.26: the daemon itself refuses a request the person's roles may not
    make."""
    link = web_dock.app.extensions["dock"]
    token = link.login("1001", PEOPLE["officer"][1])["token"]
    from web_status.context import DaemonError

    with pytest.raises(DaemonError) as refused:
        link.act(token, "device.flag", {"serial": "EMU0001", "lost": True})
    assert refused.value.code == "not_allowed"
    assert web_dock.svc.store.device("EMU0001").lost is False


def test_a_post_without_its_csrf_token_is_refused(web_dock) -> None:
    client = web_dock.app.test_client()
    client.get("/lang/en")
    reply = client.post("/login", data={"officer": "1001", "pin": PEOPLE["officer"][1]})
    assert reply.status_code == 400
    assert "did not come from this site" in reply.get_data(as_text=True)
    assert "web_login" not in [e.kind for e in web_dock.svc.audit.entries()]
    log_in(client, "officer")
    assert client.post("/logout").status_code == 400  # still logged in afterwards
    assert client.get("/api/v1/session").status_code == 200


def test_a_daemon_that_is_down_gives_a_clear_page(web_dock) -> None:
    client = web_dock.app.test_client()
    client.get("/lang/en")
    log_in(client, "officer")
    web_dock.stop_daemon()
    reply = client.get("/")
    text = reply.get_data(as_text=True)
    assert reply.status_code == 503
    assert "The dock is not answering" in text and "Traceback" not in text
    client.get("/lang/zh")
    reply = client.post("/login", data={"officer": "1001", "pin": "246810",
                                        "csrf_token": csrf_of(client)})  # fmt: skip
    assert reply.status_code == 503 and "采集站服务无响应" in reply.get_data(as_text=True)
    assert client.get("/api/v1/slots").get_json()["error"]["code"] == "daemon_unavailable"


def test_errors_are_pages_in_the_persons_language(web_dock) -> None:
    client = web_dock.app.test_client()
    client.get("/lang/zh")
    reply = client.get("/no/such/page")
    assert reply.status_code == 404 and "页面不存在" in reply.get_data(as_text=True)
    assert client.get("/api/v1/nothing").get_json()["error"]["code"] == "not_found"
    headers = client.get("/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    cookie = headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --------------------------------------------------------------------------- hostile text
def test_recorder_text_is_inert_in_the_api_and_the_page(make_web_dock) -> None:
    web = make_web_dock({"serial": "EMU0001"})
    # What a recorder's refusal says reaches the slot's error as the recorder chose it.
    web.svc.views["1"].error = f"recorder refused: {HOSTILE}"
    client = web.app.test_client()
    log_in(client, "maintenance")
    raw = client.get("/api/v1/slots").get_data(as_text=True)
    assert "<script>" not in raw and "\x1b" not in raw
    slots = client.get("/api/v1/slots").get_json()["slots"]
    assert slots[0]["error"] == f"recorder refused: {HOSTILE}"  # the same text, as data
    page = client.get("/").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --------------------------------------------------------------------------- API
def test_the_openapi_document_is_valid_and_lists_every_api_route(web_dock) -> None:
    client = web_dock.app.test_client()
    doc = client.get("/api/v1/openapi.json").get_json()
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(doc)
    api_rules = {r for r in routes_and_roles(web_dock.app) if r.startswith("/api/v1/")}
    api_rules.discard("/api/v1/openapi.json")
    documented = {p.replace("{", "<").replace("}", ">") for p in doc["paths"]}
    assert {re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", r) for r in api_rules} == documented


def test_a_machine_token_reads_the_api_as_its_name(web_dock) -> None:
    made = web_tokens.add(web_dock.svc, "8001", "hq-dashboard", "maintenance")
    client = web_dock.app.test_client()
    auth = {"Authorization": f"Bearer {made.token}"}
    me = client.get("/api/v1/session", headers=auth).get_json()
    assert me["person"]["id"] == "token:hq-dashboard"
    assert me["person"]["roles"] == ["maintenance"]
    assert client.get("/api/v1/slots", headers=auth).status_code == 200
    web_tokens.revoke(web_dock.svc, "8001", "hq-dashboard")
    assert client.get("/api/v1/session", headers=auth).status_code == 401
    stored = web_dock.svc.store._db().execute("SELECT * FROM web_tokens").fetchall()
    assert made.token.encode() not in repr([tuple(r) for r in stored]).encode()


# --------------------------------------------------------------------------- schema
OLD_OFFICERS = """CREATE TABLE officers (
    officer_id TEXT PRIMARY KEY, name TEXT NOT NULL, unit TEXT NOT NULL, badge TEXT UNIQUE,
    pin_salt BLOB NOT NULL, pin_hash BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor')),
    disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL)"""


def test_a_database_of_schema_1_gets_the_wider_roles(tmp_path) -> None:
    path = str(tmp_path / "dock.db")
    old = Store(path)  # today's tables, then the officers table as release 1 made it
    old.add_officer("1001", "Wang Wei", "T3", "246810")
    db = old._db()
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("ALTER TABLE officers RENAME TO officers_new")
    db.execute(OLD_OFFICERS)
    db.execute("INSERT INTO officers SELECT * FROM officers_new")
    db.execute("DROP TABLE officers_new")
    db.execute("PRAGMA user_version = 0")
    old.close()
    with pytest.raises(sqlite3.IntegrityError):
        raw = sqlite3.connect(path)
        raw.execute("UPDATE officers SET role = 'admin'")
    raw.close()
    store = Store(path)
    assert store._db().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.officer("1001").role == "officer" and store.check_pin("1001", "246810")
    store.add_officer("8001", "Qian Hua", "T3", "852963", role="admin")
    assert {o.role for o in store.officers()} == {"officer", "admin"}
    assert set(ROLES) >= {o.role for o in store.officers()}


OLD_WEB_TOKENS = """CREATE TABLE web_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'maintenance', 'admin')),
    token_sha256 BLOB NOT NULL UNIQUE, created_at REAL NOT NULL, revoked_at REAL)"""


def _narrow(db: sqlite3.Connection, table: str, create: str) -> None:
    db.execute(f"ALTER TABLE {table} RENAME TO {table}_new")
    db.execute(create)
    db.execute(f"INSERT INTO {table} SELECT * FROM {table}_new")
    db.execute(f"DROP TABLE {table}_new")


def test_a_database_of_schema_2_gets_the_keeper_and_oversight_roles(tmp_path) -> None:
    """002 art.22, 25; 001 art.20(3): a dock upgraded from schema 2 keeps its people and
    may then name a keeper and an oversight body (REQUIREMENTS section 8)."""
    path = str(tmp_path / "dock.db")
    old = Store(path)
    old.add_officer("8001", "Qian Hua", "T3", "852963", role="admin")
    db = old._db()
    db.execute("PRAGMA foreign_keys=OFF")
    _narrow(
        db,
        "officers",
        OLD_OFFICERS.replace("'supervisor')", "'supervisor', 'maintenance', 'admin')"),
    )
    _narrow(db, "web_tokens", OLD_WEB_TOKENS)
    db.execute("PRAGMA user_version = 2")
    old.close()
    raw = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("UPDATE officers SET role = 'keeper'")
    raw.close()
    store = Store(path)
    assert store._db().execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 3
    assert store.officer("8001").role == "admin" and store.check_pin("8001", "852963")
    store.add_officer("5001", "Zhao Lei", "T3", "415263", role="keeper")
    store.add_officer("6001", "Sun Li", "纪检", "627384", role="oversight")
    assert {o.role for o in store.officers()} == {"admin", "keeper", "oversight"}
    store._db().execute(
        "INSERT INTO web_tokens VALUES ('audit-office', 'oversight', x'00', 0, NULL)"
    )


def test_officer_add_takes_a_role_and_the_supervisor_flag_still_works(web_dock) -> None:
    from dock.services import officers, requests

    requests.call(web_dock.svc, "officer.add", {"officer_id": "7002", "name": "A", "unit": "u",
                  "pin": "731946", "role": "maintenance"}, actor="8001")  # fmt: skip
    officers.add(web_dock.svc, "8001", "9002", "B", "u", "731946", supervisor=True)
    assert web_dock.svc.store.officer("7002").role == "maintenance"
    assert web_dock.svc.store.officer("9002").role == "supervisor"


# --------------------------------------------------------------------------- process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dock_web_as_a_process_answers_login(make_web_dock, tmp_path) -> None:
    web = make_web_dock(serve=False)
    port = free_port()
    toml = tmp_path / "dock.toml"
    slots = "".join(f'[[slot]]\nid = "{s.id}"\nport = "{s.port}"\n\n' for s in web.cfg.slots)
    toml.write_text(
        f'[dock]\nid = "emulated"\nsite = "s"\nunit = "u"\nstate_dir = "{web.state_dir}"\n'
        f'evidence_dir = "{web.state_dir}/evidence"\nlocale = "en"\n\n'
        f'[clock]\nsource = "trusted"\n\n{slots}[web]\nport = {port}\n'
    )
    exe = os.path.join(os.path.dirname(sys.executable), "dock-web")
    proc = subprocess.Popen([exe, "--config", str(toml)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        page = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as r:
                    page = r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert "Officer number" in page
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/slots", timeout=2)
        assert refused.value.code == 401
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert f"listening on http://127.0.0.1:{port}" in out
    assert oct(os.stat(os.path.join(web.state_dir, "web-secret.key")).st_mode & 0o777) == "0o600"


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as a unit's own CA would issue."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dock.local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "web.crt", tmp_path / "web.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(key_path, 0o600)
    return str(cert_path), str(key_path)


def test_dock_web_over_tls_serves_https_with_secure_cookies(make_web_dock, tmp_path) -> None:
    """With tls_cert and tls_key the site speaks only HTTPS, and the session cookie is
    Secure, so a browser never sends it in the clear."""
    import http.client
    import ssl

    web = make_web_dock(serve=False)
    port = free_port()
    cert, key = _self_signed(tmp_path)
    toml = tmp_path / "dock.toml"
    slots = "".join(f'[[slot]]\nid = "{s.id}"\nport = "{s.port}"\n\n' for s in web.cfg.slots)
    toml.write_text(
        f'[dock]\nid = "emulated"\nsite = "s"\nunit = "u"\nstate_dir = "{web.state_dir}"\n'
        f'evidence_dir = "{web.state_dir}/evidence"\nlocale = "en"\n\n'
        f'[clock]\nsource = "trusted"\n\n{slots}[web]\nport = {port}\n'
        f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    )
    exe = os.path.join(os.path.dirname(sys.executable), "dock-web")
    proc = subprocess.Popen([exe, "--config", str(toml)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    trusted = ssl.create_default_context(cafile=cert)
    try:
        status, cookie = 0, ""
        for _ in range(100):
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=trusted, timeout=2)
                conn.request("GET", "/login")
                answer = conn.getresponse()
                status, cookie = answer.status, answer.getheader("Set-Cookie") or ""
                answer.read()
                conn.close()
                break
            except (ConnectionError, OSError):
                time.sleep(0.1)
        assert status == 200
        assert "Secure" in cookie and "HttpOnly" in cookie
        # plain HTTP on the same port gets no page
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            plain.request("GET", "/login")
            plain_status: int | None = plain.getresponse().status
        except (http.client.HTTPException, OSError):
            plain_status = None
        assert plain_status != 200
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0]
    assert f"listening on https://127.0.0.1:{port}" in out
