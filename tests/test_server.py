"""workbench.graphdb.server against a real Neo4j Community server (no mocks).

The module shares ONE throwaway server (temporary home, free ports, so a developer's server on 7687 is
left alone). Only the last test starts the JVM a second time (after kill -9, on the existing store).
Needs Java 17 and, on the first run, Maven with access to Maven Central (``mvn package`` in java/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from workbench.graphdb import server as wb_server
from workbench.graphdb.server import LocalNeo4j, ServerError, free_port

pytestmark = [
    pytest.mark.neo4j,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs Java 17 (java on PATH)"),
]


def _two_free_ports() -> tuple[int, int]:
    a = free_port()
    b = free_port()
    while b == a:
        b = free_port()
    return a, b


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="workbench")
    sub = parser.add_subparsers(dest="cmd")
    wb_server.add_server_parser(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


def _cli_args_for(srv: LocalNeo4j) -> list[str]:
    return [
        "--home", str(srv.home),
        "--bolt-port", str(srv.bolt_port),
        "--http-port", str(srv.http_port or 0),
        "--heap", srv.heap,
        "--pagecache", srv.pagecache,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bolt, http = _two_free_ports()
    srv = LocalNeo4j(
        home=tmp_path_factory.mktemp("neo4j-home"), bolt_port=bolt, http_port=http, heap="512m", pagecache="64m"
    )
    srv.start(timeout=180)
    yield srv
    srv.stop(force=True)


def test_status_of_running_server(server, capsys):
    st = server.status()
    assert st.state == "running" and st.running
    assert st.version.startswith("5.26."), st.version
    assert st.edition == "community"
    assert st.uri == f"bolt://127.0.0.1:{server.bolt_port}"
    assert st.pid and st.pid == int(server.pid_file.read_text())
    assert st.store_bytes and st.store_bytes > 0
    assert (st.heap, st.pagecache) == ("512m", "64m")
    assert st.rss_bytes and st.rss_bytes > 0

    assert _cli("server", "status", *_cli_args_for(server)) == 0
    out = capsys.readouterr().out
    assert "Neo4j is running" in out and st.version in out and st.uri in out


def test_start_again_is_idempotent(server):
    pid = server.status(query=False).pid
    t0 = time.monotonic()
    st = server.start()
    assert time.monotonic() - t0 < 15
    assert st.running and st.pid == pid
    assert "already running" in st.message


def test_cypher_round_trip(server):
    with server.driver() as driver:
        driver.execute_query("MATCH (n:WbTest) DETACH DELETE n")
        driver.execute_query("CREATE (:WbTest {name: $name, n: 42})", name="round trip")
        records, _, _ = driver.execute_query("MATCH (t:WbTest) RETURN t.name AS name, t.n AS n")
    assert [(r["name"], r["n"]) for r in records] == [("round trip", 42)]


def test_http_and_browser_on_loopback(server):
    base = f"http://127.0.0.1:{server.http_port}"
    with urllib.request.urlopen(base + "/", timeout=10) as r:
        discovery = r.read().decode()
    assert '"neo4j_edition":"community"' in discovery.replace(" ", "")
    assert f"bolt://127.0.0.1:{server.bolt_port}" in discovery
    with urllib.request.urlopen(base + "/browser/", timeout=10) as r:
        assert r.status == 200
        assert "<html" in r.read().decode("utf-8", "replace").lower()


def test_listens_on_loopback_only(server):
    # Find this machine's non-loopback address (no packet is sent for a UDP connect).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            addr = s.getsockname()[0]
        except OSError:
            addr = None
    if not addr or addr.startswith("127."):
        pytest.skip("no non-loopback IPv4 address to probe")
    for port in (server.bolt_port, server.http_port):
        with pytest.raises(OSError):
            socket.create_connection((addr, port), timeout=2).close()


def test_port_taken_error_names_the_port(tmp_path, capsys):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        srv = LocalNeo4j(home=tmp_path / "home", bolt_port=port, http_port=None)
        with pytest.raises(ServerError, match=rf"port {port} \(Bolt\) is already in use.*WORKBENCH_BOLT_PORT="):
            srv.start()
        assert not srv.pid_file.exists()

        code = _cli("server", "start", "--home", str(tmp_path / "home"), "--bolt-port", str(port), "--http-port", "0")
        err = capsys.readouterr().err
        assert code == 1
        assert f"port {port}" in err and "Traceback" not in err


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_pid_file_is_reported_and_cleaned(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    (home / "logs").mkdir()
    (home / "logs" / "launcher.log").write_text("WORKBENCH_NEO4J_READY version=5.26.x\nsome last words\n")
    pid = _dead_pid()
    srv = LocalNeo4j(home=home, bolt_port=free_port(), http_port=None)
    srv.pid_file.write_text(f"{pid}\n")

    st = srv.status()
    assert st.state == "stale" and not st.running
    assert "stale pid file" in st.message and f"process {pid} is not running" in st.message
    assert "crashed or was killed" in st.message
    assert "some last words" in st.log_tail

    code = _cli("server", "status", "--home", str(home), "--bolt-port", str(srv.bolt_port))
    out = capsys.readouterr().out
    assert code == 4 and "stale pid file" in out and "some last words" in out

    st = srv.stop()
    assert "stale" in st.message
    assert not srv.pid_file.exists()
    assert srv.status().state == "stopped"


def test_pid_reused_by_another_process_is_stale(tmp_path):
    srv = LocalNeo4j(home=tmp_path / "home", bolt_port=free_port(), http_port=None)
    srv.home.mkdir(parents=True)
    srv.pid_file.write_text(f"{os.getpid()}\n")  # alive, but it is this Python, not our JVM
    st = srv.status()
    assert st.state == "stale"
    assert f"pid {os.getpid()} now belongs to another process" in st.message
    srv.stop()  # must not signal this process
    assert not srv.pid_file.exists()


def test_missing_java_and_maven_give_clear_errors(tmp_path):
    srv = LocalNeo4j(home=tmp_path / "home", bolt_port=free_port(), http_port=None, java="no-such-java-xyz")
    with pytest.raises(ServerError, match=r"Java .*not installed.*Java 17"):
        srv.start()

    java_dir = tmp_path / "java"  # a launcher checkout that was never built
    java_dir.mkdir()
    shutil.copy(wb_server.JAVA_DIR / "pom.xml", java_dir / "pom.xml")
    srv = LocalNeo4j(home=tmp_path / "home", http_port=None, mvn="no-such-mvn-xyz", java_dir=java_dir)
    assert srv.needs_build()
    with pytest.raises(ServerError, match=r"Maven .*not installed.*install Maven"):
        srv.build()


def test_a_home_that_cannot_be_created_is_an_error_not_a_traceback(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")  # refused even to root, unlike a read-only mode
    home = blocker / "neo4j"
    code = _cli("server", "start", "--home", str(home), "--bolt-port", str(free_port()), "--http-port", "0")
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot use {home} as the server home" in err and "WORKBENCH_NEO4J_HOME" in err
    assert "Traceback" not in err


def test_a_server_whose_home_was_deleted_is_still_found_and_stopped(tmp_path, capsys):
    """Deleting the home of a running server must not hide the JVM that still holds its ports."""
    srv = LocalNeo4j(home=tmp_path / "home", bolt_port=free_port(), http_port=None, heap="256m", pagecache="16m")
    pid = srv.start().pid
    shutil.rmtree(srv.home)

    st = srv.status()
    assert st.state == "orphaned" and st.pid == pid
    assert "still runs" in st.message and "workbench server stop" in st.message
    assert _cli("server", "status", "--home", str(srv.home), "--bolt-port", str(srv.bolt_port)) == 4
    with pytest.raises(ServerError, match="still runs"):
        srv.start()

    srv.stop(timeout=60, force=True)
    assert srv.status().state == "stopped"
    assert not wb_server.port_in_use(srv.bolt_port)


def test_crash_recovery_then_stop(server, capsys):
    """Runs last (one extra JVM start): kill -9 -> reported as crashed; start cleans up and recovers the
    committed data; stop -> stopped; stopping again succeeds."""
    with server.driver() as driver:
        driver.execute_query("MERGE (:WbDurable {k: 1})")
    pid = server.status(query=False).pid

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while server.status(query=False).state != "stale" and time.monotonic() < deadline:
        time.sleep(0.1)
    st = server.status()
    assert st.state == "stale" and not st.running
    assert f"process {pid} is not running" in st.message and "crashed or was killed" in st.message
    assert st.log_tail

    st = server.start()
    assert st.running and st.pid != pid and st.start_seconds is not None
    assert server.pid_file.read_text().strip() == str(st.pid)
    with server.driver() as driver:
        records, _, _ = driver.execute_query("MATCH (d:WbDurable) RETURN count(d) AS c")
    assert records[0]["c"] == 1

    st = server.stop()
    assert st.message.startswith("stopped cleanly")
    assert not server.pid_file.exists() and not server.state_file.exists()
    assert server.status().state == "stopped"
    assert server.stop().message == "nothing to stop"
    assert _cli("server", "status", *_cli_args_for(server)) == 3
    assert "not running" in capsys.readouterr().out
