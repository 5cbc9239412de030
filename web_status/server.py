"""``dock-web``: the local site served by a production WSGI server in its own process.

cheroot (CherryPy's WSGI server; TLS with its builtin ``ssl`` adapter) binds every
address of ``[web] listen`` on ``[web] port``. The process holds neither the recorders
nor the signing key: it reads the dock database and asks the daemon (docs/CONTROL.md).
A configuration problem is one line per problem and exit status 2; a port that cannot be
bound, one line and exit status 5.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from common.privileges import DOCK_USER, drop_or_exit, service_user
from dock.config import ConfigError, load_config
from dock.support.logs import add_log_format_option, setup_logging

log = logging.getLogger("web_status.server")

EXIT_CONFIG = 2
EXIT_BIND = 5
#: Worker threads per address: the kiosk, a few browsers, a machine polling.
THREADS = 4


def _server_error(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's error log (a bad request, a client gone, a TLS handshake refused), as
    one line of ours; its traceback only at DEBUG (common/logsetup.py)."""
    log.log(level, "%s", msg, exc_info=traceback)


def build_servers(cfg: Any, app: Any, port: int | None = None) -> list[Any]:
    """One cheroot server per listen address, TLS when the certificate is configured."""
    from cheroot import wsgi

    servers = []
    for address in cfg.web.listen:
        server = wsgi.Server(
            (address, cfg.web.port if port is None else port),
            app,
            numthreads=THREADS,
            server_name="dock-web",
            shutdown_timeout=5,
        )
        # Bound what a slow or hostile client may hold: headers, body and idle time.
        server.max_request_header_size = 16 * 1024
        server.max_request_body_size = 512 * 1024
        server.timeout = 20
        server.error_log = _server_error  # type: ignore[method-assign]  # one log line
        if cfg.web.tls:
            from cheroot.ssl.builtin import BuiltinSSLAdapter

            server.ssl_adapter = BuiltinSSLAdapter(cfg.web.tls_cert, cfg.web.tls_key)
        servers.append(server)
    return servers


def main(argv: list[str] | None = None) -> int:
    # Root becomes the dock user before anything opens a file (common/privileges.py).
    drop_or_exit("dock-web", service_user(*DOCK_USER), EXIT_CONFIG)
    parser = argparse.ArgumentParser(prog="dock-web", description="The dock's local web site")
    parser.add_argument("--config", help="dock.toml (default $DOCK_CONFIG, /etc/dock/dock.toml)")
    parser.add_argument("--port", type=int, help="override [web] port (tests: 0 = any free)")
    add_log_format_option(parser)
    args = parser.parse_args(argv)
    try:  # one line per event on stderr, as the daemon's (docs/OPERATIONS.md, "Logs")
        setup_logging("INFO", args.log_format)
    except ValueError as exc:
        print(f"dock-web: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("configuration: %s", problem)
        return EXIT_CONFIG
    from web_status import create_app

    app = create_app(cfg)
    servers = build_servers(cfg, app, args.port)
    try:
        for server in servers:
            server.prepare()
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return EXIT_BIND
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve, daemon=True) for s in servers]
    for server, thread in zip(servers, threads, strict=True):
        thread.start()
        host, bound = server.bind_addr[:2]
        scheme = "https" if cfg.web.tls else "http"
        log.info("listening on %s://%s:%s", scheme, host, bound)
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
