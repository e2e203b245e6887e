"""A database server for one run: in a temporary directory, started, then stopped and removed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Protocol, TypeVar


class Server(Protocol):
    def start(self) -> "Server": ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


@contextlib.contextmanager
def temporary_server(make: Callable[[Path], S], prefix: str) -> Iterator[S]:
    """``make(folder)`` a server in a fresh temporary folder, yield it started; stop and remove it after."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        # As root, PostgreSQL and MariaDB run as their own unprivileged users, who must reach the folder.
        home.chmod(0o755)
    server = make(home)
    try:
        yield server.start()
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(home, ignore_errors=True)
