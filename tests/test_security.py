"""The local Neo4j is safe by default on a presenter's laptop.

Threat: a web page open in the presenter's browser sends requests to 127.0.0.1 (HTTP API, or a WebSocket to
the Bolt port) to run Cypher: wipe the demo graph, or read local files with LOAD CSV. The server must refuse:
no request runs without the generated password, a browser is told that only the server's own Browser origin
may read HTTP answers, and LOAD CSV cannot read local files even with the password.

These tests start their own server with HTTP on (the session's server has HTTP off), since failed logins
count towards Neo4j's per-user lockout and must not disturb other tests.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import struct
import urllib.error
import urllib.request

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, ClientError

from workbench.graphdb.db import Graph
from workbench.graphdb.server import LocalNeo4j, free_port

EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LocalNeo4j(
        home=tmp_path_factory.mktemp("secure") / "neo4j",
        bolt_port=free_port(),
        http_port=free_port(),
        heap="512m",
        pagecache="64m",
    )
    srv.start()
    yield srv
    srv.stop(force=True)


def http_post(srv: LocalNeo4j, body: dict, headers: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{srv.http_port}/db/neo4j/tx/commit",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- the password


def test_password_is_generated_private_and_read_by_the_workbench(server):
    path = server.password_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) >= 32
    with server.connect() as graph:
        assert graph.read("RETURN 1 AS one") == [{"one": 1}]


def test_connecting_without_the_password_fails(server):
    with GraphDatabase.driver(server.uri, auth=None) as driver:
        with pytest.raises((AuthError, ClientError)):
            driver.verify_connectivity()


def test_the_local_server_is_found_with_its_password(server, monkeypatch):
    """`Graph.connect()` with no settings reads the default home's password: point the default home at
    this server and clear the variables the test session exported."""
    for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_NEO4J_HOME", str(server.home))
    monkeypatch.setenv("WORKBENCH_BOLT_PORT", str(server.bolt_port))
    with Graph.connect() as graph:
        assert graph.read("RETURN 2 AS two") == [{"two": 2}]


def test_the_password_survives_a_restart(server):
    """The second start skips setting the password (auth-applied) and the same password still works."""
    before = server.password_file.read_text()
    server.stop()
    server.start()
    assert server.password_file.read_text() == before
    with server.connect() as graph:
        assert graph.read("RETURN 3 AS three") == [{"three": 3}]


# ---- HTTP from another origin


def test_cross_origin_http_without_password_is_refused(server):
    status, headers, body = http_post(server, {"statements": [{"statement": "MATCH (n) DETACH DELETE n"}]},
                                      {"Origin": EVIL})
    assert status == 401
    assert body["errors"][0]["code"] == "Neo.ClientError.Security.Unauthorized"
    # A browser would not even let the page read this answer: only the Browser's own origin is allowed.
    assert headers.get("Access-Control-Allow-Origin") == f"http://127.0.0.1:{server.http_port}"


def test_cross_origin_preflight_names_only_the_browser_origin(server):
    """A page must send a preflight before it can add an Authorization header; the answer allows only the
    server's own Browser origin, so the browser refuses the real request."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.http_port}/db/neo4j/tx/commit",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        method="OPTIONS",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed != "*" and allowed != EVIL
    assert allowed == f"http://127.0.0.1:{server.http_port}"


def test_load_csv_cannot_read_local_files_even_with_the_password(server, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("ssh-key,very-secret\n")
    user, password = server.credentials()
    status, _headers, body = http_post(
        server,
        {"statements": [{"statement": f"LOAD CSV FROM 'file://{secret}' AS row RETURN row"}]},
        {"Authorization": basic(user, password)},
    )
    assert status == 200
    assert body["results"][0]["data"] == []
    assert body["errors"][0]["code"] == "Neo.ClientError.Statement.ExternalResourceFailed"
    assert "very-secret" not in json.dumps(body)


def test_load_csv_over_bolt_is_refused_too(server):
    with server.connect() as graph:
        with pytest.raises(ClientError, match="allow_csv_import_from_file_urls"):
            graph.read("LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row LIMIT 1")


# ---- a WebSocket to the Bolt port from another origin


def _ws_frame(payload: bytes) -> bytes:
    """A masked binary WebSocket frame (clients must mask)."""
    mask = os.urandom(4)
    head = bytes([0x82])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_read(sock: socket.socket) -> bytes:
    """The payload of one (unmasked, server-sent) frame."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    _opcode, length = exactly(2)
    length &= 0x7F
    if length == 126:
        (length,) = struct.unpack(">H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack(">Q", exactly(8))
    return exactly(length)


def _packstream_map(entries: dict[str, str]) -> bytes:
    def text(s: str) -> bytes:
        raw = s.encode()
        return (bytes([0x80 | len(raw)]) if len(raw) < 16 else bytes([0xD0, len(raw)])) + raw

    return bytes([0xA0 | len(entries)]) + b"".join(text(k) + text(v) for k, v in entries.items())


def test_cross_origin_bolt_websocket_cannot_run_anything_without_the_password(server):
    """Neo4j 5.26 has no setting that checks the Origin of a WebSocket on the Bolt port, so a page CAN open
    one (the README says so). What it cannot do is log in: HELLO without the password fails, so no query
    ever runs. This speaks Bolt 4.4 over a WebSocket exactly as a page's JavaScript would."""
    with socket.create_connection(("127.0.0.1", server.bolt_port), timeout=30) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.bolt_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Origin: {EVIL}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 101")  # not refused at this level: Neo4j has no such check

        # Bolt handshake: magic, then four proposed versions (4.4 first).
        sock.sendall(_ws_frame(bytes.fromhex("6060B017") + bytes.fromhex("00000404") + bytes(12)))
        assert _ws_read(sock) == bytes.fromhex("00000404")

        # HELLO with Neo4j's factory-default password, the best guess a page has.
        token = {"user_agent": "evil/1.0", "scheme": "basic", "principal": "neo4j", "credentials": "neo4j"}
        hello = bytes([0xB1, 0x01]) + _packstream_map(token)
        sock.sendall(_ws_frame(struct.pack(">H", len(hello)) + hello + b"\x00\x00"))
        reply = _ws_read(sock)
        # chunk header (2 bytes), then struct marker and signature: 0x7F is FAILURE, 0x70 SUCCESS
        assert reply[2:4] == bytes([0xB1, 0x7F]), reply
        assert b"Neo.ClientError.Security.Unauthorized" in reply


# ---- the Neo4j Browser, as `server status` prints it


def test_the_printed_browser_url_logs_in_and_calls_nothing_outside(server, browser):
    """The Browser opens from the URL `server status` prints with the user filled in, logs in with the
    password, and (thanks to the Content-Security-Policy we set) makes no request beyond 127.0.0.1: on
    conference Wi-Fi nothing may load from the network."""
    _user, password = server.credentials()
    outside: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()

    def only_loopback(route):
        # A request the page's CSP blocks never gets here; one that would leave the machine does.
        if route.request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_loopback)
    page.goto(server.status().browser_url)
    username = page.locator("input[data-testid='username']")
    username.wait_for(timeout=60_000)
    assert username.input_value() == "neo4j"
    page.locator("input[data-testid='password']").fill(password)
    page.locator("button[data-testid='connect']").click()
    page.get_by_text("You are connected as user").wait_for(timeout=60_000)
    page.wait_for_timeout(3000)  # telemetry and fonts would be asked for by now
    context.close()
    assert outside == []
