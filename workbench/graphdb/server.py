"""The local Neo4j Community server: build, start, stop, status.

The workbench runs a real Neo4j Community 5.26 LTS DBMS without Docker or the Neo4j download site: the
jars come from Maven Central (``java/pom.xml``), a tiny launcher (``workbench.neo4j.WorkbenchNeo4j``)
starts the DBMS with the settings this module writes to ``<home>/conf/neo4j.conf``, and ``java`` runs it
directly, detached from the Python process, so the server outlives ``workbench server start``.

**Local demo/test server only:** Bolt (and HTTP, if enabled) listen on 127.0.0.1 only and authentication
is on: user ``neo4j`` with a password generated on first start and kept in ``<home>/password`` (mode
0600), which the workbench, the tests and the notebooks read by themselves. Only the server's own Browser
origin may read HTTP answers cross-origin, and ``LOAD CSV`` cannot read local files. Do not expose it to a
network all the same: see the README, "The local Neo4j", for what is and is not protected.

Layout of a server home (default ``<repo>/.workbench/neo4j``, git-ignored)::

    conf/neo4j.conf     generated on every start (edits are overwritten)
    data/               the stores (databases ``system`` and ``neo4j``) and transaction logs
    logs/launcher.log   the JVM's stdout/stderr: Neo4j's user log, errors (previous run: launcher.log.1)
    neo4j.pid           pid of the running JVM
    neo4j.json          ports and memory settings of the running JVM
    password            the generated password of user neo4j (mode 0600), read by the workbench
    auth-applied        SHA-256 of the password the DBMS was given (so later starts skip setting it)
    import/             LOAD CSV's import directory, kept empty (file URLs are refused anyway)

Settings come from the constructor, else the environment, else defaults:

    WORKBENCH_NEO4J_HOME       server home (default <repo root>/.workbench/neo4j)
    WORKBENCH_BOLT_PORT        Bolt port (7687)
    WORKBENCH_HTTP_PORT        HTTP port for the Query API and Neo4j Browser (7474); 0 or empty disables
    WORKBENCH_NEO4J_HEAP       JVM heap, -Xms and -Xmx (1g)
    WORKBENCH_NEO4J_PAGECACHE  Neo4j page cache (512m)
    WORKBENCH_JAVA             java executable (java on PATH; Neo4j 5.26 needs Java 17 or 21)

The first ``build()`` (done by ``start()`` when needed) runs ``mvn -B -q package`` in ``java/``, which
downloads about 185 MB into ``~/.m2`` and copies ~140 MB of jars to ``java/target/lib``; later starts
are offline. POSIX only (uses sessions, signals and ``/proc`` or ``ps``).

Library use::

    srv = LocalNeo4j.from_env()
    srv.start()                    # returns once Bolt accepts connections
    with srv.driver() as driver:
        driver.execute_query("RETURN 1")
    print(srv.status().describe())
    srv.stop()

Throwaway server (tests)::

    with LocalNeo4j(home=tmp_path, bolt_port=free_port(), http_port=None) as srv:
        ...
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

__all__ = [
    "DEFAULT_BOLT_PORT",
    "DEFAULT_HEAP",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_PAGECACHE",
    "JAVA_DIR",
    "LocalNeo4j",
    "REPO_ROOT",
    "ServerError",
    "ServerStatus",
    "add_server_parser",
    "default_home",
    "free_port",
    "human_size",
    "parse_size",
    "port_in_use",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
JAVA_DIR = REPO_ROOT / "java"
MAIN_CLASS = "workbench.neo4j.WorkbenchNeo4j"

DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 7474
DEFAULT_HEAP = "1g"
DEFAULT_PAGECACHE = "512m"
HOST = "127.0.0.1"

# Marker lines printed by WorkbenchNeo4j.java.
_READY = "WORKBENCH_NEO4J_READY"
_STOPPED = "WORKBENCH_NEO4J_STOPPED"
_BUILD_STAMP = ".workbench-build-stamp"

# JVM flags: Neo4j 5.x's own defaults for Java 17 (module opens for its unsafe/direct-buffer access and
# Netty), G1, and a JVM that dies on OutOfMemoryError instead of limping on (status then reports it).
_JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dlog4j2.disable.jmx=true",
    "-Dfile.encoding=UTF-8",
]


_FROM_ENV: object = object()  # sentinel: "take it from the environment"


class ServerError(RuntimeError):
    """An expected failure (port taken, no Java, JVM exited, timeout...) with a message for humans."""


# --------------------------------------------------------------------------------------------------
# small helpers


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_home() -> Path:
    """``$WORKBENCH_NEO4J_HOME`` or ``<repo root>/.workbench/neo4j``."""
    env = os.environ.get("WORKBENCH_NEO4J_HOME", "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / ".workbench" / "neo4j"


_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str | int) -> int:
    """``"512m"``/``"1g"``/``"1024M"``/``"2GiB"``/bytes -> bytes (binary units)."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ServerError(f"invalid memory size {text!r}; use e.g. 512m or 1g")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def _mb(n: int) -> str:
    """bytes -> ``"<n>g"`` or ``"<n>m"`` (rounded up to whole MiB), understood by the JVM and by Neo4j."""
    mib = max(1, -(-n // (1 << 20)))
    return f"{mib // 1024}g" if mib % 1024 == 0 else f"{mib}m"


USER = "neo4j"
# The Content-Security-Policy of the Browser's pages: everything from this server (and Bolt on loopback).
BROWSER_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws://127.0.0.1:* http://127.0.0.1:*; "
    "worker-src 'self' blob:; frame-src 'self'"
)


def password_file(home: Path) -> Path:
    return Path(home) / "password"


def read_password(home: Path) -> str | None:
    """The server's generated password, or None if it has none yet."""
    try:
        return password_file(home).read_text().strip() or None
    except OSError:
        return None


def ensure_password(home: Path) -> str:
    """The server's password, generated (URL-safe, 32 random bytes) and saved with mode 0600 if missing."""
    existing = read_password(home)
    if existing:
        return existing
    import secrets

    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    fd = os.open(password_file(home), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = HOST) -> bool:
    """True if binding ``host:port`` fails (some process listens there or holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _port_busy(port: int, grace: float = 0.0) -> bool:
    """``port_in_use``, but wait up to ``grace`` seconds for the port to be released."""
    deadline = time.monotonic() + grace
    while port_in_use(port):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.2)
    return False


def _port_accepts(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _suggest_port(port: int) -> int:
    for candidate in range(port + 1, min(port + 50, 65536)):
        if not port_in_use(candidate):
            return candidate
    return free_port()


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name)
    if raw is None:
        return default
    raw = raw.strip()
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ServerError(f"{name}={raw!r} is not a port number") from None


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _dir_disk_usage(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (like ``du``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def _process_cmdline(pid: int) -> str | None:
    """Command line of a live (non-zombie) process, ``""`` if unreadable, ``None`` if it is gone."""
    if pid <= 0:
        return None
    # Reap it if it is our own exited child (e.g. started by this Python process), so it is not a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat[stat.rindex(")") + 2 :].startswith(("Z", "X")):
                # A multi-threaded process's main thread turns zombie while the other threads are still
                # exiting (and still hold its sockets and files): gone only once they are all gone.
                with contextlib.suppress(OSError):
                    if len(os.listdir(proc / "task")) > 1:
                        return ""
                return None
            return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return "" if proc.exists() else None
    try:  # macOS and friends
        out = subprocess.run(
            ["ps", "-o", "stat=,command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if not out:
        return None
    stat, _, cmd = out.partition(" ")
    return None if stat.startswith("Z") else cmd.strip()


def _rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        out = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
        return int(out.stdout.strip()) * 1024
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------------------------------
# status


@dataclasses.dataclass
class ServerStatus:
    """What ``status()``/``start()``/``stop()`` found.

    ``state`` is ``"running"`` (Bolt answers), ``"unresponsive"`` (our JVM is alive but Bolt does not
    answer: still starting, or hung), ``"stale"`` (a pid file whose process is gone or is some other
    program: the server crashed or was killed), or ``"stopped"``.
    """

    state: str
    home: Path
    bolt_port: int
    http_port: int | None
    heap: str
    pagecache: str
    pid: int | None = None
    version: str | None = None
    edition: str | None = None
    store_bytes: int | None = None
    rss_bytes: int | None = None
    message: str = ""
    log_tail: list[str] = dataclasses.field(default_factory=list)
    start_seconds: float | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def http_url(self) -> str | None:
        return f"http://{HOST}:{self.http_port}" if self.http_port else None

    @property
    def browser_url(self) -> str | None:
        if not self.http_port:
            return None
        return (
            f"http://{HOST}:{self.http_port}/browser/"
            f"?dbms=bolt://{USER}@{HOST}:{self.bolt_port}&preselectAuthMethod=NATIVE"
        )

    def describe(self) -> str:
        """Multi-line text for humans."""
        head = {
            "running": "Neo4j is running",
            "stopped": "Neo4j is not running",
            "stale": "Neo4j is NOT running (stale pid file)",
            "unresponsive": "Neo4j process is alive but Bolt does not answer",
            "orphaned": "Neo4j is running without its pid file",
        }.get(self.state, self.state)
        lines = [head + (f": {self.message}" if self.message else "")]
        if self.running or self.state == "unresponsive":
            version = f"Neo4j {self.version} {self.edition or ''}".strip() if self.version else "?"
            lines += [
                f"  uri:        {self.uri}  (127.0.0.1 only)",
                f"  user:       {USER}   password: {read_password(self.home) or '?'}  (from {password_file(self.home)})",
                f"  browser:    {self.browser_url or 'off (HTTP disabled)'}",
                f"  pid:        {self.pid}",
                f"  version:    {version}",
            ]
            if self.rss_bytes:
                lines.append(f"  memory:     RSS {human_size(self.rss_bytes)}")
        else:
            lines.append(f"  uri:        {self.uri}  (when started)")
        lines += [
            f"  home:       {self.home}",
            f"  store size: {human_size(self.store_bytes) if self.store_bytes is not None else 'none yet'}",
            f"  heap:       {self.heap}   page cache: {self.pagecache}",
        ]
        if self.start_seconds is not None:
            lines.append(f"  started in {self.start_seconds:.1f} s")
        if self.log_tail:
            lines.append("  last log lines:")
            lines += [f"    | {line}" for line in self.log_tail]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# the server


class LocalNeo4j:
    """A Neo4j Community server in ``home``, run as a detached ``java`` process."""

    def __init__(
        self,
        home: Path | str | None = None,
        bolt_port: int = DEFAULT_BOLT_PORT,
        http_port: int | None = DEFAULT_HTTP_PORT,
        heap: str = DEFAULT_HEAP,
        pagecache: str = DEFAULT_PAGECACHE,
        *,
        java: str | None = None,
        mvn: str = "mvn",
        java_dir: Path | str = JAVA_DIR,
        echo: Callable[[str], None] | None = _stderr,
    ) -> None:
        self.home = Path(home).expanduser().resolve() if home is not None else default_home().resolve()
        self.bolt_port = int(bolt_port)
        self.http_port = int(http_port) if http_port else None
        for name, port in (("Bolt", self.bolt_port), ("HTTP", self.http_port)):
            if port is not None and not 0 < port < 65536:
                raise ServerError(f"invalid {name} port {port}")
        if self.http_port == self.bolt_port:
            raise ServerError(f"Bolt and HTTP cannot both use port {self.bolt_port}")
        self.heap_bytes = parse_size(heap)
        self.pagecache_bytes = parse_size(pagecache)
        if self.heap_bytes < 256 << 20:
            raise ServerError(f"heap {heap!r} is too small for Neo4j; use at least 256m")
        self.heap = _mb(self.heap_bytes)
        self.pagecache = _mb(self.pagecache_bytes)
        self.java = java or os.environ.get("WORKBENCH_JAVA") or "java"
        self.mvn = mvn
        self.java_dir = Path(java_dir)
        self.echo = echo or (lambda _msg: None)
        self._proc: subprocess.Popen | None = None

    @classmethod
    def from_env(
        cls,
        home: Path | str | None = None,
        bolt_port: int | None = None,
        http_port: int | None | object = _FROM_ENV,
        heap: str | None = None,
        pagecache: str | None = None,
        **kwargs,
    ) -> "LocalNeo4j":
        """Explicit arguments win, then ``WORKBENCH_*`` environment variables, then defaults.

        ``http_port``: leave it out to use ``$WORKBENCH_HTTP_PORT``/7474; ``0`` or ``None`` disables HTTP.
        """
        if bolt_port is None:
            bolt_port = _env_int("WORKBENCH_BOLT_PORT", DEFAULT_BOLT_PORT) or DEFAULT_BOLT_PORT
        if http_port is _FROM_ENV:
            http_port = _env_int("WORKBENCH_HTTP_PORT", DEFAULT_HTTP_PORT)
        return cls(
            home=home if home is not None else default_home(),
            bolt_port=bolt_port,
            http_port=http_port or None,
            heap=heap or os.environ.get("WORKBENCH_NEO4J_HEAP", "").strip() or DEFAULT_HEAP,
            pagecache=pagecache or os.environ.get("WORKBENCH_NEO4J_PAGECACHE", "").strip() or DEFAULT_PAGECACHE,
            **kwargs,
        )

    # ---- paths and addresses

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "neo4j.pid"

    @property
    def password_file(self) -> Path:
        return password_file(self.home)

    def credentials(self) -> tuple[str, str]:
        """``(user, password)`` for this server: the password is generated on first use and kept in
        ``<home>/password`` (mode 0600), so the workbench, the tests and the notebooks read it
        without anyone typing it."""
        return USER, ensure_password(self.home)

    def connect(self):
        """A :class:`workbench.graphdb.db.Graph` on this server, with its credentials."""
        from workbench.graphdb.db import Graph

        return Graph.connect(self.uri, *self.credentials())

    def export_env(self) -> None:
        """Point ``Graph.connect()`` (and child processes: notebook kernels, ``workbench`` commands)
        at this server: sets ``NEO4J_URI``, ``NEO4J_USER`` and ``NEO4J_PASSWORD``."""
        user, password = self.credentials()
        os.environ.update(NEO4J_URI=self.uri, NEO4J_USER=user, NEO4J_PASSWORD=password)

    @property
    def state_file(self) -> Path:
        return self.home / "neo4j.json"

    @property
    def conf_file(self) -> Path:
        return self.home / "conf" / "neo4j.conf"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "launcher.log"

    @property
    def classes_dir(self) -> Path:
        return self.java_dir / "target" / "classes"

    @property
    def lib_dir(self) -> Path:
        return self.java_dir / "target" / "lib"

    def __repr__(self) -> str:
        return f"LocalNeo4j(home={str(self.home)!r}, bolt_port={self.bolt_port}, http_port={self.http_port})"

    # ---- build

    def needs_build(self) -> bool:
        main_class = self.classes_dir / (MAIN_CLASS.replace(".", "/") + ".class")
        stamp = self.java_dir / "target" / _BUILD_STAMP
        if not (main_class.is_file() and stamp.is_file() and self.lib_dir.is_dir()):
            return True
        if not any(self.lib_dir.glob("neo4j-5*.jar")):
            return True
        built = stamp.stat().st_mtime
        sources = [self.java_dir / "pom.xml", *(self.java_dir / "src").rglob("*.java")]
        return any(p.stat().st_mtime > built for p in sources if p.exists())

    def build(self, force: bool = False) -> bool:
        """Run ``mvn -B -q package`` in ``java/`` if the launcher or its jars are missing or outdated.

        Returns True if Maven ran. Needs Maven Central only the first time (jars land in ~/.m2 and
        ``java/target/lib``).
        """
        if not force and not self.needs_build():
            return False
        if not (self.java_dir / "pom.xml").is_file():
            raise ServerError(f"{self.java_dir / 'pom.xml'} not found; is the workbench checkout complete?")
        mvn = shutil.which(self.mvn)
        if mvn is None:
            raise ServerError(
                f"Maven ('{self.mvn}') is not installed, and the Neo4j launcher in {self.java_dir} is not built "
                "yet; install Maven 3.8+ (Debian/Ubuntu: apt-get install maven) and retry"
            )
        self._java_major()  # mvn needs a JDK too; fail with the Java message first
        m2 = Path.home() / ".m2" / "repository" / "org" / "neo4j" / "neo4j"
        first = "" if m2.is_dir() else " (first run downloads ~185 MB from Maven Central into ~/.m2)"
        self.echo(f"building Neo4j launcher with Maven{first}...")
        t0 = time.monotonic()
        proc = subprocess.run(
            [mvn, "-B", "-q", "-Dstyle.color=never", "package"],
            cwd=self.java_dir,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
            raise ServerError(
                f"'mvn package' failed in {self.java_dir} (exit {proc.returncode}); Maven Central must be "
                "reachable for the first build. Last output:\n" + "\n".join("  | " + s for s in out)
            )
        (self.java_dir / "target" / _BUILD_STAMP).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        self.echo(f"built Neo4j launcher in {time.monotonic() - t0:.0f} s")
        return True

    # ---- java

    def _java_major(self) -> int:
        java = shutil.which(self.java)
        if java is None:
            raise ServerError(
                f"Java ('{self.java}') is not installed or not on PATH; Neo4j 5.26 needs Java 17 or 21 "
                "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), or set WORKBENCH_JAVA"
            )
        try:
            out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
        except (OSError, subprocess.SubprocessError) as e:
            raise ServerError(f"cannot run '{java} -version': {e}") from None
        m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
        if not m:
            raise ServerError(f"cannot tell the Java version from '{java} -version':\n{out.strip()}")
        major = int(m.group(1))
        if major == 1:  # "1.8.0_..."
            major = int(m.group(2) or 0)
        if major < 17:
            raise ServerError(
                f"{java} is Java {major}; Neo4j 5.26 needs Java 17 or 21 "
                "(Debian/Ubuntu: apt-get install openjdk-17-jdk-headless), or set WORKBENCH_JAVA"
            )
        if major not in (17, 21):
            self.echo(f"warning: {java} is Java {major}; Neo4j 5.26 supports Java 17 and 21 only")
        return major

    def _command(self) -> list[str]:
        classpath = os.pathsep.join([str(self.classes_dir), str(self.lib_dir / "*")])
        return [
            shutil.which(self.java) or self.java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_FLAGS,
            "-cp",
            classpath,
            MAIN_CLASS,
            str(self.home),
            str(self.conf_file),
            str(self.password_file),
        ]

    def _browser_origin(self) -> str:
        # With HTTP off nothing is served cross-origin; Neo4j still needs a value, so name one that no page
        # can have (a request's Origin never carries a path).
        return f"http://{HOST}:{self.http_port}" if self.http_port else f"http://{HOST}/no-cross-origin"

    def _config_text(self) -> str:
        # Neo4j's own default (70 % of the heap), made explicit: a too-big transaction fails with
        # MemoryPoolOutOfMemoryError instead of taking the JVM down.
        tx_total = _mb(self.heap_bytes * 7 // 10)
        lines = [
            "# Generated by workbench/graphdb/server.py on every start: edits here are overwritten.",
            "# LOCAL DEMO/TEST SERVER: 127.0.0.1 only; user neo4j, password generated in <home>/password.",
            f"server.default_listen_address={HOST}",
            f"server.default_advertised_address={HOST}",
            "server.bolt.enabled=true",
            f"server.bolt.listen_address={HOST}:{self.bolt_port}",
            f"server.bolt.advertised_address={HOST}:{self.bolt_port}",
            "server.bolt.tls_level=DISABLED",
            f"server.http.enabled={'true' if self.http_port else 'false'}",
        ]
        if self.http_port:
            lines += [
                f"server.http.listen_address={HOST}:{self.http_port}",
                f"server.http.advertised_address={HOST}:{self.http_port}",
            ]
        lines += [
            "server.https.enabled=false",
            "# safe by default: a password is required (a web page in the presenter's browser cannot guess",
            "# it), only the server's own Browser origin may read HTTP answers cross-origin, and LOAD CSV",
            "# cannot read local files (file:/// URLs refused; the import directory is empty anyway)",
            "dbms.security.auth_enabled=true",
            f"dbms.security.http_access_control_allow_origin={self._browser_origin()}",
            "dbms.security.allow_csv_import_from_file_urls=false",
            "# offline Browser: its page may load only from this server (no web fonts, analytics or",
            "# feedback widget from outside; Neo4j 5.26 has no setting to switch those off)",
            f"dbms.security.http_static_content_security_policy_header={BROWSER_CSP}",
            f"server.directories.import={self.home / 'import'}",
            "# no phoning home: usage reports and Browser telemetry off",
            "dbms.usage_report.enabled=false",
            "client.allow_telemetry=false",
            "# memory: the heap is set with -Xms/-Xmx; bound the page cache and all transactions together",
            f"server.memory.pagecache.size={self.pagecache}",
            f"dbms.memory.transaction.total.max={tx_total}",
            "# small footprint: no debug/query logs (Neo4j's user log goes to logs/launcher.log),",
            "# transaction logs not preallocated (256 MiB each otherwise) and pruned",
            "server.logs.debug.enabled=false",
            "db.logs.query.enabled=OFF",
            "db.tx_log.preallocate=false",
            "db.tx_log.rotation.size=64m",
            "db.tx_log.rotation.retention_policy=2 days 256M",
        ]
        return "\n".join(lines) + "\n"

    # ---- state files

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None if not self.pid_file.exists() else -1

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _clear_state(self) -> None:
        for p in (self.pid_file, self.state_file):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def _is_our_jvm(self, pid: int) -> tuple[bool, str]:
        """(alive and ours, reason if not)."""
        cmd = _process_cmdline(pid)
        if cmd is None:
            return False, f"process {pid} is not running"
        if cmd == "":
            return True, ""  # cannot read it (other user); assume it is ours rather than kill-guess
        if MAIN_CLASS in cmd and str(self.home) in cmd:
            return True, ""
        prog = cmd.split()[0] if cmd.split() else "?"
        return False, f"pid {pid} now belongs to another process ({os.path.basename(prog)})"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop on one home between processes."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock = open(self.home / ".lock", "w")
        except OSError as e:
            raise ServerError(
                f"cannot use {self.home} as the server home ({e.strerror}); make it writable, or choose "
                "another with --home or WORKBENCH_NEO4J_HOME"
            ) from None
        with lock:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX
                yield
                return
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- status

    def _base_status(self, state: str, state_data: dict | None = None, **kw) -> ServerStatus:
        d = state_data or {}
        data_dir = self.home / "data"
        return ServerStatus(
            state=state,
            home=self.home,
            bolt_port=d.get("bolt_port", self.bolt_port),
            http_port=d.get("http_port", self.http_port),
            heap=d.get("heap", self.heap),
            pagecache=d.get("pagecache", self.pagecache),
            store_bytes=_dir_disk_usage(data_dir) if data_dir.is_dir() else None,
            **kw,
        )

    def _stale_message(self, pid: int, reason: str) -> tuple[str, list[str]]:
        tail = _tail(self.log_file)
        clean = any(_STOPPED in line for line in tail)
        how = "" if clean else "; the server crashed or was killed (no clean shutdown in the log)"
        return f"stale pid file {self.pid_file} ({reason}){how}", tail

    def _orphan_pid(self) -> int | None:
        """A launcher JVM of this home still running without a pid file (the home was deleted or emptied
        under it): found by its command line, which names the home."""
        proc = Path("/proc")
        if not proc.is_dir():
            return None
        needle = f"{MAIN_CLASS} {self.home} "
        for entry in proc.iterdir():
            if entry.name.isdigit() and needle in (_process_cmdline(int(entry.name)) or ""):
                return int(entry.name)
        return None

    def status(self, query: bool = True) -> ServerStatus:
        """Inspect the server: running/stopped/stale/orphaned, and if running ask it its version."""
        pid = self._read_pid()
        if pid is None:
            orphan = self._orphan_pid()
            if orphan is not None:
                return self._base_status(
                    "orphaned",
                    pid=orphan,
                    message=(
                        f"its JVM (pid {orphan}) still runs but {self.pid_file} is gone (was the home "
                        "deleted?); `workbench server stop` stops it"
                    ),
                )
            return self._base_status("stopped")
        state_data = self._read_state()
        if pid < 0:
            return self._base_status(
                "stale", state_data, message=f"unreadable pid file {self.pid_file}", log_tail=_tail(self.log_file)
            )
        ours, reason = self._is_our_jvm(pid)
        if not ours:
            msg, tail = self._stale_message(pid, reason)
            return self._base_status("stale", state_data, pid=pid, message=msg, log_tail=tail)
        st = self._base_status("unresponsive", state_data, pid=pid, rss_bytes=_rss_bytes(pid))
        if not _port_accepts(st.bolt_port):
            st.message = f"nothing answers on {st.uri}; still starting, or hung (see {self.log_file})"
            st.log_tail = _tail(self.log_file)
            return st
        if not query:
            st.state = "running"
            return st
        try:
            st.version, st.edition = self._query_version(st.bolt_port)
            st.state = "running"
        except Exception as e:  # driver errors: report, do not raise
            st.message = f"Bolt on {st.uri} does not answer queries: {e}"
            st.log_tail = _tail(self.log_file)
        return st

    def _query_version(self, bolt_port: int) -> tuple[str, str]:
        from neo4j import GraphDatabase

        with GraphDatabase.driver(
            f"bolt://{HOST}:{bolt_port}", auth=self.credentials(), connection_timeout=5
        ) as driver:
            # The system database allows only CALL ... YIELD ... here (no WHERE/RETURN); filter in Python.
            records, _, _ = driver.execute_query(
                "CALL dbms.components() YIELD name, versions, edition", database_="system"
            )
        kernel = next((r for r in records if r["name"] == "Neo4j Kernel"), records[0])
        return kernel["versions"][0], kernel["edition"]

    def driver(self, **kwargs):
        """A ``neo4j`` driver for this server (``bolt://127.0.0.1:<port>``, its credentials). Close it yourself."""
        from neo4j import GraphDatabase

        bolt_port = self._read_state().get("bolt_port", self.bolt_port)
        return GraphDatabase.driver(f"bolt://{HOST}:{bolt_port}", auth=self.credentials(), **kwargs)

    # ---- start

    def start(self, timeout: float = 180) -> ServerStatus:
        """Start the server (idempotent) and return once Bolt accepts connections.

        Raises ServerError (port taken, no Java/Maven, JVM exited, timeout) with the last log lines.
        """
        with self._lock():
            return self._start(timeout)

    def _start(self, timeout: float) -> ServerStatus:
        t0 = time.monotonic()
        st = self.status(query=False)
        if st.state in ("running", "unresponsive"):
            if st.state == "unresponsive":  # another start may be under way: wait for it
                self._wait_for_bolt(st.pid, st.bolt_port, t0 + timeout, proc=None)
            st = self.status()
            if st.state != "running":
                raise ServerError(f"Neo4j (pid {st.pid}) is alive but not usable: {st.message}")
            moved = []
            if st.bolt_port != self.bolt_port:
                moved.append(f"Bolt port {st.bolt_port}, not {self.bolt_port}")
            if st.http_port != self.http_port:
                moved.append(f"HTTP port {st.http_port or 'off'}, not {self.http_port or 'off'}")
            st.message = f"already running (pid {st.pid})" + (
                f"; note: it uses {' and '.join(moved)} (stop it to change)" if moved else ""
            )
            self.echo(f"Neo4j is already running at {st.uri} (pid {st.pid})")
            return st
        if st.state == "orphaned":
            raise ServerError(st.message)
        grace = 0.0
        if st.state == "stale":
            self.echo(f"warning: {st.message}; cleaning it up")
            if st.log_tail:
                self.echo("last log lines:\n" + "\n".join("  | " + s for s in st.log_tail))
            self._clear_state()
            grace = 5.0  # a JVM that just died may still be releasing its ports

        self._java_major()
        self.build()
        for name, port, env in (
            ("Bolt", self.bolt_port, "WORKBENCH_BOLT_PORT"),
            ("HTTP", self.http_port, "WORKBENCH_HTTP_PORT"),
        ):
            if port and _port_busy(port, grace):
                alt = _suggest_port(port)
                flag = "--bolt-port" if name == "Bolt" else "--http-port"
                extra = " (or 0 to disable HTTP)" if name == "HTTP" else ""
                raise ServerError(
                    f"port {port} ({name}) is already in use by another process; stop it or set "
                    f"{env}={alt}{extra} (or pass {flag} {alt})"
                )

        (self.home / "conf").mkdir(parents=True, exist_ok=True)
        (self.home / "import").mkdir(exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        ensure_password(self.home)
        self.conf_file.write_text(self._config_text())
        if self.log_file.exists():
            os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))
        fresh = not (self.home / "data" / "databases" / "neo4j").exists()
        self.echo(
            f"starting Neo4j on {self.uri} (home {self.home}"
            + (", creating the stores" if fresh else "")
            + f", heap {self.heap}, page cache {self.pagecache})..."
        )
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                self._command(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session: survives this Python process and its Ctrl-C
                close_fds=True,
            )
        self._proc = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        self.state_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "bolt_port": self.bolt_port,
                    "http_port": self.http_port,
                    "heap": self.heap,
                    "pagecache": self.pagecache,
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
                indent=2,
            )
            + "\n"
        )
        try:
            self._wait_for_bolt(proc.pid, self.bolt_port, t0 + timeout, proc=proc)
        except ServerError:
            self._abort(proc)
            raise
        ready = time.monotonic() - t0  # from the start() call until Bolt accepts connections
        st = self.status()
        st.start_seconds = ready
        st.message = f"started in {ready:.1f} s"
        self.echo(f"Neo4j {st.version or ''} is running at {st.uri} (pid {proc.pid}, {st.message})")
        return st

    def _wait_for_bolt(self, pid: int | None, port: int, deadline: float, proc: subprocess.Popen | None) -> None:
        from neo4j import GraphDatabase
        from neo4j.exceptions import DriverError, Neo4jError

        def exited() -> str | None:
            if proc is not None:
                rc = proc.poll()
                return None if rc is None else f"exit code {rc}"
            if pid is not None and _process_cmdline(pid) is None:
                return "process gone"
            return None

        last_error = "Bolt not listening yet"
        while True:
            why = exited()
            if why:
                raise ServerError(
                    f"Neo4j exited during start-up ({why}); see {self.log_file}. Last log lines:\n"
                    + "\n".join("  | " + s for s in _tail(self.log_file, 25))
                )
            if _port_accepts(port):
                try:
                    with GraphDatabase.driver(
                        f"bolt://{HOST}:{port}", auth=self.credentials(), connection_timeout=5
                    ) as d:
                        d.verify_connectivity()
                    return
                except (DriverError, Neo4jError, OSError) as e:
                    last_error = f"{type(e).__name__}: {e}"
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"Neo4j did not accept Bolt connections on {HOST}:{port} in time ({last_error}); "
                    f"see {self.log_file}. Last log lines:\n"
                    + "\n".join("  | " + s for s in _tail(self.log_file, 25))
                )
            time.sleep(0.2)

    def _abort(self, proc: subprocess.Popen) -> None:
        """After a failed start: make sure the JVM is gone and forget it."""
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self._proc = None
        self._clear_state()

    # ---- stop

    def stop(self, timeout: float = 60, force: bool = False) -> ServerStatus:
        """SIGTERM the server and wait until the process is gone (clean shutdown, store checkpointed).

        Stopping a stopped server succeeds. A stale pid file is reported and removed. If the JVM does not
        exit within ``timeout``: SIGKILL it when ``force``, else raise ServerError.
        """
        if not self.home.exists():
            if self._orphan_pid() is not None:
                return self._stop(timeout, force)
            self.echo("Neo4j is not running")
            st = self._base_status("stopped")
            st.message = "nothing to stop"
            return st
        with self._lock():
            return self._stop(timeout, force)

    def _stop(self, timeout: float, force: bool) -> ServerStatus:
        st = self.status(query=False)
        if st.state == "stopped":
            st.message = "nothing to stop"
            self.echo("Neo4j is not running")
            return st
        if st.state == "stale":
            self.echo(f"warning: {st.message}; removing it")
            self._clear_state()
            st = self.status(query=False)
            st.message = "was not running (removed a stale pid file)"
            return st
        pid = st.pid
        assert pid is not None
        self.echo(f"stopping Neo4j (pid {pid})...")
        t0 = time.monotonic()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise ServerError(f"not allowed to stop Neo4j (pid {pid}): it belongs to another user") from None
        while self._alive(pid):
            if time.monotonic() - t0 > timeout:
                if not force:
                    raise ServerError(
                        f"Neo4j (pid {pid}) did not stop within {timeout:.0f} s; look at {self.log_file}, "
                        f"wait longer, or kill it with 'kill -9 {pid}' (the next start then runs recovery)"
                    )
                self.echo(f"warning: Neo4j (pid {pid}) did not stop within {timeout:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                while self._alive(pid):
                    time.sleep(0.1)
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
        clean = any(_STOPPED in line for line in _tail(self.log_file, 40))
        self._clear_state()
        self._proc = None
        st = self.status(query=False)
        st.pid = pid
        if clean:
            st.message = f"stopped cleanly (pid {pid}) in {elapsed:.1f} s"
        else:
            st.message = f"pid {pid} is gone after {elapsed:.1f} s but the log shows no clean shutdown"
            st.log_tail = _tail(self.log_file)
        self.echo(f"Neo4j {st.message}")
        return st

    def _alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        return _process_cmdline(pid) is not None

    # ---- context manager: a throwaway server

    def __enter__(self) -> "LocalNeo4j":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop(force=True)


# --------------------------------------------------------------------------------------------------
# command line: `workbench server start|stop|status`


def add_server_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``server {start,stop,status}`` on an argparse sub-parsers object; sets ``func``."""
    p = subparsers.add_parser(
        "server",
        help="start/stop/inspect the local Neo4j server",
        description=(
            "Run a local Neo4j Community 5.26 server (jars from Maven Central, Java 17). It listens on "
            "127.0.0.1 only, as user neo4j with a password generated in the server home (read by the "
            "workbench automatically; `server status` shows it): a local demo/test server. "
            "Settings default to WORKBENCH_NEO4J_HOME, WORKBENCH_BOLT_PORT, WORKBENCH_HTTP_PORT, "
            "WORKBENCH_NEO4J_HEAP and WORKBENCH_NEO4J_PAGECACHE. "
            "Exit codes: 0 ok (status: running); 1 error; status only: 3 not running, 4 stale pid file or "
            "unresponsive server."
        ),
    )
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--home", type=Path, help="server home (default $WORKBENCH_NEO4J_HOME or .workbench/neo4j)")
    p.add_argument("--bolt-port", type=int, help=f"Bolt port (default $WORKBENCH_BOLT_PORT or {DEFAULT_BOLT_PORT})")
    p.add_argument(
        "--http-port",
        type=int,
        help=f"HTTP/Browser port, 0 disables (default $WORKBENCH_HTTP_PORT or {DEFAULT_HTTP_PORT})",
    )
    p.add_argument("--heap", help=f"JVM heap (default $WORKBENCH_NEO4J_HEAP or {DEFAULT_HEAP})")
    p.add_argument("--pagecache", help=f"page cache (default $WORKBENCH_NEO4J_PAGECACHE or {DEFAULT_PAGECACHE})")
    p.add_argument("--timeout", type=float, help="seconds to wait for start (180) or stop (60)")
    p.set_defaults(func=_server_command)
    return p


def _server_command(args: argparse.Namespace) -> int:
    try:
        srv = LocalNeo4j.from_env(
            home=args.home,
            bolt_port=args.bolt_port,
            http_port=_FROM_ENV if args.http_port is None else args.http_port,
            heap=args.heap,
            pagecache=args.pagecache,
        )
        if args.action == "start":
            st = srv.start(**({"timeout": args.timeout} if args.timeout else {}))
            print(st.describe())
            return 0
        if args.action == "stop":
            srv.stop(**({"timeout": args.timeout} if args.timeout else {}))
            return 0
        st = srv.status()
        print(st.describe())
        return {"running": 0, "stopped": 3}.get(st.state, 4)
    except ServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
