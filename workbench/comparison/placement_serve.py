"""``workbench placement-serve``: the real Placement 16.0.0 over HTTP, served like ``workbench serve``.

Placement's own WSGI application (``placement.deploy.loadapp``, authentication
``noauth2``) on the same gunicorn set-up as the graph's service
(:func:`workbench.api.serve.gunicorn_server`: worker class, threads per worker,
the loopback ``Host`` check), so the two can be compared fairly side by side
and real clients pointed at either. Its database is a SQLite file in a
temporary directory, or with ``--postgres`` a throwaway PostgreSQL
(:class:`workbench.comparison.postgres.LocalPostgres`); both are removed when
the server stops. SQLite lets one writer in at a time: when two requests write
at once (claims racing), Placement answers one of them 500 ("database is
locked"). For concurrent writers use ``--postgres``, a server database as in
production. ``--connection URL`` serves a database made and loaded elsewhere
instead (``workbench bench-http`` loads one fast with
:meth:`PlacementOracle.load_bulk`), and leaves it in place.

The schema is made before the workers start, by Placement's own
``update_database`` (Alembic migrations, then the standard traits and
resource classes) in a separate, spawned process: the gunicorn master must
not hold database connections that its forked workers would share. Each
worker then builds the app itself, after the fork, and finds the schema done.

:class:`ServerProcess` starts either service as a child process and stops it,
for tests and notebooks.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workbench.api.serve import ServeError, _echo, add_server_options, check_port_free, gunicorn_server
from workbench.graphdb.server import free_port

DEFAULT_PORT = 8779  # next to the graph's 8778
PLACEMENT_DATABASE = "placement"
TITLE = "Real Placement 16.0.0"


def placement_conf(connection: str, settings: tuple[tuple[str, str, str], ...] = ()):
    """Placement's configuration for ``connection``: noauth2, no config files, ``settings``
    ((group, option, value), as ``--set`` gives them), defaults otherwise."""
    from oslo_config import cfg
    from placement import conf as placement_conf_options

    conf = cfg.ConfigOpts()  # our own object, never the global cfg.CONF
    placement_conf_options.register_opts(conf)
    conf.set_override("connection", connection, group="placement_database")
    conf.set_override("auth_strategy", "noauth2", group="api")
    for group, option, value in settings:
        conf.set_override(option, value, group=group)  # oslo.config converts and checks the value
    conf([], default_config_files=[], default_config_dirs=[])
    return conf


def _prepare_database(connection: str) -> None:
    """Placement's schema, traits and resource classes (run in a spawned process)."""
    from placement import db_api, deploy

    conf = placement_conf(connection)
    conf.set_override("sync_on_startup", True, group="placement_database")
    db_api.configure(conf)
    deploy.update_database(conf)


def prepare_database(connection: str) -> None:
    process = multiprocessing.get_context("spawn").Process(target=_prepare_database, args=(connection,))
    process.start()
    process.join()
    if process.exitcode:
        raise ServeError(f"Placement could not create its database at {connection} (exit {process.exitcode})")


def placement_app(connection: str, settings: tuple[tuple[str, str, str], ...] = ()):
    """The real Placement WSGI app on ``connection`` (in a worker, after the fork), as its wsgi module builds it."""
    from placement import db_api, deploy

    conf = placement_conf(connection, settings)
    db_api.configure(conf)
    return deploy.loadapp(conf)


@contextlib.contextmanager
def _database(use_postgres: bool, connection: str | None = None):
    """A connection URL for a fresh database, removed afterwards, and words saying what it is;
    or ``connection``, a database made and loaded elsewhere, used as it is and left in place."""
    if connection:
        yield connection, f"the existing database {connection}"
        return
    if not use_postgres:
        home = Path(tempfile.mkdtemp(prefix="workbench-placement-"))
        try:
            yield f"sqlite:///{home / 'placement.sqlite'}", "SQLite file"
        finally:
            shutil.rmtree(home, ignore_errors=True)
        return
    from workbench.comparison.oracle import _postgres_admin
    from workbench.comparison.postgres import LocalPostgres, PostgresUnavailable

    try:
        with LocalPostgres.temporary() as server:
            _postgres_admin(server.url, f"CREATE DATABASE {PLACEMENT_DATABASE}")
            yield f"{server.url}/{PLACEMENT_DATABASE}", f"PostgreSQL on 127.0.0.1:{server.port}"
    except PostgresUnavailable as error:
        raise ServeError(str(error)) from None


def cmd_placement_serve(args: argparse.Namespace) -> int:
    """Check the port, make the database, serve until stopped, then remove the database."""
    try:
        if args.workers < 1:
            raise ServeError("--workers must be at least 1")
        check_port_free(args.host, args.port)
        settings = tuple(args.set)
        try:
            placement_conf("sqlite://", settings)  # refuse a bad --set now, not in every worker
        except Exception as bad:  # oslo.config's NoSuchOptError, NoSuchGroupError, ValueError
            raise ServeError(f"--set: {bad}") from None
        with _database(args.postgres, args.connection) as (connection, what):
            if not args.connection:
                _echo(f"creating Placement's database ({what})...")
                prepare_database(connection)
            detail = f"(its own WSGI app, noauth2, {what}" + "".join(f"; {g}.{o} = {v}" for g, o, v in settings) + ")"
            server = gunicorn_server(
                args.host, args.port, args.workers, lambda: placement_app(connection, settings), TITLE, detail,
                "workbench-real-placement", args.access_log,
            )  # fmt: skip
            master = os.getpid()
            try:
                server.run()
            except SystemExit as stop:
                if os.getpid() != master:
                    # A worker leaving (gunicorn's SystemExit comes up through here after the fork, its own
                    # clean-up done): it must not remove the database the others still use.
                    os._exit(stop.code if isinstance(stop.code, int) else 1)
                return stop.code or 0
    except ServeError as error:
        _echo(f"error: {error}")
        return 2
    return 0


def add_placement_serve_parser(sub) -> None:
    p = sub.add_parser(
        "placement-serve",
        help="serve the real Placement 16.0.0 over HTTP (noauth2), like `workbench serve`, to compare",
        description="Serve the real Placement 16.0.0 (its own WSGI app, noauth2) over HTTP with the same "
        "gunicorn set-up as `workbench serve`, on a throwaway database: a SQLite file, or PostgreSQL "
        "with --postgres. Listens on 127.0.0.1 unless --host says otherwise; the database is removed "
        "when it stops (Ctrl-C or SIGTERM).",
    )
    add_server_options(p, DEFAULT_PORT)
    database = p.add_mutually_exclusive_group()
    database.add_argument("--postgres", action="store_true",
                          help="a throwaway PostgreSQL instead of SQLite (for concurrent writers: with SQLite, "
                          "one of two claims made at once may get 500 'database is locked')")
    database.add_argument("--connection", metavar="URL",
                          help="serve this existing Placement database (SQLAlchemy URL, schema made and loaded "
                          "elsewhere, e.g. by PlacementOracle.load_bulk) instead of a throwaway one; left in place")
    p.add_argument("--set", type=_setting, action="append", default=[], metavar="GROUP.OPTION=VALUE",
                   help="one of Placement's configuration options, e.g. placement.allocation_conflict_retry_count=1 "
                   "(repeatable; otherwise Placement's defaults)")
    p.set_defaults(func=cmd_placement_serve)


def _setting(text: str) -> tuple[str, str, str]:
    name, equals, value = text.partition("=")
    group, dot, option = name.partition(".")
    if not (equals and dot and group and option):
        raise argparse.ArgumentTypeError(f"{text!r}: expected GROUP.OPTION=VALUE, e.g. placement.max_allocation_candidates=1000")
    return group, option, value


class ServerProcess:
    """``workbench serve`` (``kind="graph"``) or ``workbench placement-serve`` (``"placement"``) as a child.

    Started on a free loopback port; :attr:`url` is its base URL once :meth:`start` returns (after the
    banner). The graph service uses Neo4j from the environment (``NEO4J_URI`` ...). Use as a context
    manager or call :meth:`stop`.
    """

    COMMANDS = {"graph": "serve", "placement": "placement-serve"}
    BANNERS = {"graph": "Placement API", "placement": TITLE}

    def __init__(self, kind: str, workers: int = 2, postgres: bool = False, timeout: float = 120,
                 connection: str | None = None, settings: tuple[tuple[str, str, str], ...] = ()):
        if kind not in self.COMMANDS:
            raise ValueError(f"kind must be one of {sorted(self.COMMANDS)}, not {kind!r}")
        self.kind, self.workers, self.postgres, self.timeout = kind, workers, postgres, timeout
        self.connection = connection  # Placement only: serve this existing database
        self.settings = settings  # Placement only: (group, option, value) of its configuration
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "ServerProcess":
        """:meth:`launch`, then :meth:`wait_ready`."""
        return self.launch().wait_ready()

    def launch(self) -> "ServerProcess":
        """Start the server process without waiting for it (to start several at once)."""
        command = [sys.executable, "-m", "workbench.cli", self.COMMANDS[self.kind]]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        command += ["--postgres"] if self.postgres else []
        command += ["--connection", self.connection] if self.connection else []
        command += [f"--set={group}.{option}={value}" for group, option, value in self.settings]
        # The server's messages go to a file: a pipe nobody reads would fill and block it.
        self._log = tempfile.NamedTemporaryFile("w+", prefix=f"workbench-{self.kind}-", suffix=".log")
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._log, env=os.environ.copy())
        return self

    def wait_ready(self) -> "ServerProcess":
        """Wait for the banner saying it listens; if it exits or times out instead, stop it and say why."""
        deadline = time.monotonic() + self.timeout
        while f"{self.BANNERS[self.kind]} " not in self.log() or " at http" not in self.log():
            if self._process.poll() is not None or time.monotonic() > deadline:
                output = self.log()
                self.stop()
                raise RuntimeError(f"{' '.join(self._process.args)} did not start:\n{output}")
            time.sleep(0.1)
        return self

    def log(self) -> str:
        """What the server has written so far (banner, warnings, errors)."""
        with open(self._log.name) as log:
            return log.read()

    @property
    def pid(self) -> int | None:
        """The server's main process (the gunicorn master; its workers are its children)."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """SIGTERM (a graceful stop) and wait; the server removes its own database."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
