"""Helpers for the tests that kill a Neo4j server and start it again."""

from __future__ import annotations

import os
import time


def wait_until_gone(pid: int) -> None:
    """The JVM is this process's child: reap it, so it is really gone."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # started by another process: wait for it to vanish
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(0.05)
