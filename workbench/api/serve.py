"""``workbench serve``: the Placement REST API over the graph, on HTTP.

The server is gunicorn, driven through its ``BaseApplication`` API. Why
gunicorn: it is maintained, it pre-forks worker processes (Python runs one
thread of Python at a time, so processes are how a WSGI app uses more than
one core), each worker runs a few threads for requests that wait on Neo4j,
a crashed worker is replaced, and SIGTERM is a graceful stop (in-flight
requests finish) that Ctrl-C also gets. Each worker connects to Neo4j on
its first request, after the fork: a driver's sockets must not be shared
between processes.

Authentication is Placement's ``noauth2``: a local demo or test server
without Keystone. Any ``x-auth-token`` is believed (``admin`` is an
admin), so it listens on 127.0.0.1 unless told otherwise. Web pages in the
presenter's browser cannot use it: a token is a custom header, which a
cross-origin page may send only after a CORS preflight that this server
never grants (no ``[cors]`` origin is configured), and a page that makes
its own name resolve to 127.0.0.1 (DNS rebinding) is refused by
:func:`loopback_hosts_only`, which checks the ``Host`` header.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys

from workbench.graphdb.db import Graph

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8778  # 8778: Placement's registered port
THREADS_PER_WORKER = 4


class ServeError(RuntimeError):
    """The server cannot start; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    """Fail early, in words, rather than with gunicorn's retry loop."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
            raise ServeError(f"port {port} on {host} {why}; choose another with --port") from None


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def loopback_hosts_only(app, port: int):
    """Refuse requests whose ``Host`` is not a loopback name: a page that rebinds its own DNS name to
    127.0.0.1 becomes same-origin and may send any header, but its requests still carry its name."""
    allowed = {name for host in LOOPBACK_NAMES for name in (host, f"{host}:{port}")}

    def guarded(environ, start_response):
        host = environ.get("HTTP_HOST", "")
        if host.lower() in allowed:
            return app(environ, start_response)
        detail = f"Host {host!r} is not this server's name (127.0.0.1:{port} or localhost:{port}): refused"
        body = json.dumps({"errors": [{"status": 403, "title": "Forbidden", "detail": detail}]}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guarded


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gunicorn_server(
    host: str, port: int, workers: int, build_app, title: str, detail: str, name: str, access_log: bool = False
):
    """A gunicorn application (not yet running) serving the WSGI app ``build_app()`` makes in each worker.

    Shared by ``workbench serve`` and ``workbench placement-serve`` so both are served alike: the same
    worker class, threads per worker and timeouts. Once it listens it prints ``title``, ``detail`` and the
    URL; on loopback, requests must name a loopback host (:func:`loopback_hosts_only`).
    """
    from gunicorn.app.base import BaseApplication

    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/"

    class Server(BaseApplication):
        def load_config(self):
            settings = {
                "bind": f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": THREADS_PER_WORKER,
                "proc_name": name,
                "loglevel": "warning",
                "accesslog": "-" if access_log else None,
                "graceful_timeout": 10,
                "when_ready": lambda _arbiter: _echo(
                    f"{title} {detail} at {url}  ({workers} worker{'s' * (workers != 1)}; Ctrl-C or SIGTERM stops it)"
                ),
                "on_exit": lambda _arbiter: _echo(f"{title} stopped"),
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            # In each worker, after the fork.
            app = build_app()
            # Listening elsewhere was asked for explicitly: the Host names are then the operator's.
            return loopback_hosts_only(app, port) if host in ("127.0.0.1", "::1", "localhost") else app

    return Server()


def make_server(host: str, port: int, workers: int, access_log: bool = False):
    """A gunicorn application serving ``make_app`` over ``Graph.connect()`` (not yet running)."""

    def build_app():
        from workbench.api.app import make_app, make_conf

        return make_app(make_conf(), Graph.connect)  # the graph connects on first use

    detail = "(noauth2, microversions 1.0-1.39)"
    return gunicorn_server(host, port, workers, build_app, "Placement API", detail, "workbench-placement", access_log)


def cmd_serve(args: argparse.Namespace) -> int:
    """Check Neo4j and the port (clear errors now, not on the first request), then serve until stopped."""
    try:
        if args.workers < 1:
            raise ServeError("--workers must be at least 1")
        _echo("checking Neo4j...")
        with Graph.connect() as graph:
            _echo(f"Neo4j at {graph.uri}")
        check_port_free(args.host, args.port)
    except ServeError as error:
        _echo(f"error: {error}")
        return 2
    make_server(args.host, args.port, args.workers, args.access_log).run()
    return 0


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve Placement's REST API (1.0-1.39) over the graph, with noauth2 (no Keystone)",
        description="Serve Placement's REST API (microversions 1.0-1.39) over the graph with gunicorn. "
        "Authentication is Placement's noauth2, for a local demo or test server without Keystone: "
        "the token is believed ('x-auth-token: admin' is an admin; 'user:project' a user), so it "
        "listens on 127.0.0.1 unless --host says otherwise. Neo4j: NEO4J_URI or the local server.",
    )
    add_server_options(p, DEFAULT_PORT)
    p.set_defaults(func=cmd_serve)


def add_server_options(p: argparse.ArgumentParser, default_port: int) -> None:
    """The options both services take, so that they are served alike."""
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=default_port, help=f"port (default {default_port})")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--access-log", action="store_true", help="log each request on stdout")

