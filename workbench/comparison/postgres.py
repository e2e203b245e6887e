"""A throwaway PostgreSQL on loopback, to run the real Placement as production does.

Placement runs on MySQL or PostgreSQL in production; the in-process oracle
(:mod:`workbench.comparison.oracle`) uses SQLite in memory unless given a PostgreSQL
server. This module starts one from Debian's ``postgresql`` package
(``apt-get install postgresql``; ``./run.sh test`` installs it): a fresh
cluster in a directory of ours, listening on 127.0.0.1 only, trust
authentication, default settings otherwise. PostgreSQL refuses to run as root,
so as root the cluster belongs to the ``postgres`` user the package creates.

    with LocalPostgres.temporary() as server:
        oracle = PlacementOracle(postgres=server.url)
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from pathlib import Path

from workbench.comparison.throwaway import temporary_server
from workbench.graphdb.server import free_port

SUPERUSER = "workbench"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here, or the server would not start; the message says which."""


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (Debian's newest version), if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class LocalPostgres:
    """A PostgreSQL cluster in ``home``, serving 127.0.0.1:``port``."""

    def __init__(self, home: Path, port: int | None = None):
        self.bin = binaries()
        if self.bin is None:
            raise PostgresUnavailable(
                "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH); "
                "install it with `apt-get install postgresql`"
            )
        self.home, self.port = Path(home), port or free_port()
        self.data = self.home / "data"

    @property
    def url(self) -> str:
        """The server's SQLAlchemy URL, without a database name."""
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise PostgresUnavailable(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr or done.stdout}")

    def start(self) -> "LocalPostgres":
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-instructions")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.home}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.home / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @classmethod
    def temporary(cls) -> contextlib.AbstractContextManager["LocalPostgres"]:
        """A server in a temporary directory, stopped and removed afterwards."""
        return temporary_server(lambda home: cls(home / "cluster"), prefix="workbench-postgres-")
