"""A throwaway MariaDB on loopback, to run the real Placement on its most common backend.

Placement runs on MySQL or MariaDB in most deployments. This module starts a
server from Debian's ``mariadb-server`` package (``apt-get install
mariadb-server``): a fresh data directory of ours, listening on 127.0.0.1
only, with a ``root`` account without password reachable over TCP, default
settings otherwise, and never the system's own server or configuration
files (``--no-defaults``). As root the server runs as the ``mysql`` user the
package creates (mariadbd refuses to run as root). Placement reaches it
through PyMySQL, the driver OpenStack deploys.

    with LocalMariaDB.temporary() as server:
        oracle = PlacementOracle(mariadb=server.url)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from workbench.comparison.throwaway import temporary_server
from workbench.graphdb.server import free_port

START_TIMEOUT_S = 60.0


class MariaDBUnavailable(RuntimeError):
    """No MariaDB binaries here, or the server would not start; the message says which."""


def binaries() -> tuple[Path, Path] | None:
    """(mariadbd, mariadb-install-db), if both are installed."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db")
    return (Path(server), Path(install)) if server and install else None


class LocalMariaDB:
    """A MariaDB server with its data in ``home``, serving 127.0.0.1:``port``."""

    def __init__(self, home: Path, port: int | None = None):
        found = binaries()
        if found is None:
            raise MariaDBUnavailable(
                "MariaDB is not installed (no mariadbd and mariadb-install-db on PATH or in /usr/sbin); "
                "install it with `apt-get install mariadb-server`"
            )
        self.server_bin, self.install_bin = found
        self.home, self.port = Path(home), port or free_port()
        self.data = self.home / "data"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's SQLAlchemy URL (PyMySQL), without a database name."""
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def _user(self) -> list[str]:
        return ["--user=mysql"] if os.geteuid() == 0 else []

    def start(self) -> "LocalMariaDB":
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.home, "mysql", "mysql")
        if not (self.data / "mysql").exists():
            done = subprocess.run(
                [str(self.install_bin), "--no-defaults", f"--datadir={self.data}", *self._user(),
                 "--auth-root-authentication-method=normal", "--skip-test-db"],
                capture_output=True, text=True,
            )
            if done.returncode:
                raise MariaDBUnavailable(f"mariadb-install-db failed ({done.returncode}):\n{done.stderr or done.stdout}")
        log = self.home / "server.log"
        self.process = subprocess.Popen(
            [str(self.server_bin), "--no-defaults", f"--datadir={self.data}", *self._user(),
             "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.home / 'mysqld.sock'}",
             f"--pid-file={self.home / 'mysqld.pid'}", f"--log-error={log}", "--skip-name-resolve"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self._wait_ready(log)
        return self

    def _wait_ready(self, log: Path) -> None:
        import pymysql

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise MariaDBUnavailable(f"mariadbd exited ({self.process.returncode}):\n{_tail(log)}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise MariaDBUnavailable(f"mariadbd did not accept connections in {START_TIMEOUT_S:.0f} s:\n"
                                             f"{_tail(log)}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @classmethod
    def temporary(cls) -> contextlib.AbstractContextManager["LocalMariaDB"]:
        """A server in a temporary directory, stopped and removed afterwards."""
        return temporary_server(lambda home: cls(home / "server"), prefix="workbench-mariadb-")


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
