"""One HTTP client for both services: keep-alive, ``noauth2`` admin token, microversion 1.39.

:mod:`http.client` rather than urllib (which opens a connection per request): every request after the
first reuses one TCP connection, as a long-lived Nova scheduler does. Also the CPU time of a process tree,
to charge each service with what its server processes used.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlparse

MICROVERSION = "1.39"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": f"placement {MICROVERSION}",
           "accept": "application/json"}


class Client:
    """Requests to one service over one kept-alive connection (reopened if the server closed it)."""

    def __init__(self, url: str, timeout: float = 300):
        parsed = urlparse(url)
        self.url, self.host, self.port, self.timeout = url, parsed.hostname, parsed.port, timeout
        self._connection: http.client.HTTPConnection | None = None

    def raw(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        """(status, body bytes): the whole answer read, nothing decoded."""
        headers = dict(HEADERS)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        try:
            return self._send(method, path, data, headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # A kept-alive connection the server had closed (gunicorn's keep-alive timeout): once more.
            self.close()
            return self._send(method, path, data, headers)

    def _send(self, method: str, path: str, data: bytes | None, headers: dict) -> tuple[int, bytes]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._connection.request(method, path, body=data, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        """(status, decoded JSON body or None)."""
        status, raw = self.raw(method, path, body)
        return status, json.loads(raw) if raw else None

    def check(self, method: str, path: str, body: dict | None = None) -> dict | None:
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.url}: {method} {path} -> {status}: {json.dumps(answer)[:1000]}")
        return answer

    def allocation_candidates(self, query: str) -> tuple[int, dict | None]:
        """What :func:`workbench.comparison.parity.compare` asks an oracle, asked over HTTP."""
        return self.request("GET", f"/allocation_candidates?{query.lstrip('?')}")

    __call__ = allocation_candidates  # as parity's ``ask=`` for the graph's side

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system) used by process ``pid`` and all its descendants, ended ones included.

    Each live process's own time plus its reaped children's (``cutime``/``cstime`` in /proc/<pid>/stat):
    a gunicorn worker or a PostgreSQL backend that has exited is counted in its parent."""
    if not pid:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total, stack, seen = 0, [pid], False
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile: its time is now its parent's
        seen = True
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        stack += _children(current)
    return round(total / ticks, 2) if seen else None
