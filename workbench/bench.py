"""``workbench bench``: allocation candidates on the graph vs the real Placement, side by side.

For each cloud size and shape (:mod:`workbench.synthetic`) the same cloud is
loaded into Neo4j (:func:`workbench.engine.loader.load`) and into a fresh
in-process Placement (:meth:`PlacementOracle.load_bulk`, Placement's object
layer; small clouds are also loaded through the REST API, to show what that
costs). Then, for every request shape that fits the cloud:

1. **correctness first**: :func:`workbench.comparison.parity.compare` asks both engines
   and the answers must agree (with ``limit``: the same count, each candidate
   valid). A disagreement is recorded and, unless ``allow_mismatch``, ends the
   run: a wrong answer is never timed;
2. one warm-up, then ``repeat`` timed runs per engine:

   * graph: :func:`candidates.find` plus ``json.dumps`` of the body, i.e. the
     Cypher round trips, the Python combining step and the JSON encoding that
     Placement's handler also does;
   * Placement: one in-process WSGI call of ``GET /allocation_candidates``
     (the app is built once per process; SQLite in memory; no HTTP, no
     client-side decoding), see :meth:`PlacementOracle.allocation_candidates_raw`;

3. one more graph run with its query trace, to say where the graph's time goes.

Made fair to Placement (issue 18):

* **the cycle collector treated the same** (``gc_regimes``): ``"on"``, it
  runs during both engines' calls (the graph engine's own pause,
  ``candidates._cycle_collector_paused``, is lifted while timing); ``"paused"``,
  it is paused around each engine's whole timed call, as the graph engine
  pauses it around its search. Each row records its regime and how many
  collections ran during each engine's timed runs;
* **Placement at its defaults and at its recommended settings for wide trees**
  (:data:`RECOMMENDED_SETTINGS`), the latter where they cannot change the
  answer (``max_allocation_candidates`` cuts an answer longer than itself);
* **clouds in use** (``fills``, :func:`workbench.synthetic.cloud`): empty, a
  fraction of the hosts full, or the hosts first in UUID order full;
* Placement's time split into **SQL** (inside the driver's ``execute``,
  SQLAlchemy's ``before/after_cursor_execute`` events) and the Python rest,
  and each engine's **peak Python memory** in one call (``tracemalloc``, an
  extra untimed call);
* optionally a **busy core** (``busy``): a second process spinning on one
  core while timing, stopping by itself.

Memory: the peak RSS of this Python process (``getrusage``; it holds Placement,
its SQLite database and the graph client, so it is a joint figure) and, for a
Neo4j on this machine, the JVM's resident set (``/proc/<pid>/status``
``VmRSS``/``VmHWM``) and heap in use (``dbms.queryJmx``).

Output: a dict (see :func:`run`), written as JSON, Markdown and a PNG by
:mod:`workbench.bench_report`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from importlib import metadata
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse

from workbench import synthetic
from workbench.comparison import parity
from workbench.graphdb.db import Graph
from workbench.engine import candidates, loader
from workbench.comparison.oracle import PlacementOracle
from workbench.comparison.mariadb import LocalMariaDB, MariaDBUnavailable
from workbench.comparison.postgres import LocalPostgres, PostgresUnavailable

DEFAULT_SIZES = (100, 1000, 10000)
QUICK_SIZES = (100, 1000)
DEFAULT_REPEAT = 10
WARM_UP_HOSTS = 20  # Neo4j is warmed up on clouds this small ...
WARM_UP_SECONDS = 5.0  # ... for this long, before anything is timed
# Placement builds every candidate before it applies limit, and its own
# release note advises capping a response at about 100,000 candidates; above
# this many expected candidates a request is skipped (and listed as skipped).
DEFAULT_MAX_CANDIDATES = 50000
# Clouds of at most this many providers are also loaded through Placement's
# REST API (about 25 ms a call) to show what the object layer saves.
DEFAULT_REST_LOAD_MAX = 1000
GC_REGIMES = ("on", "paused")
DEFAULT_FILLS = (0.0, 0.7, synthetic.ADVERSARIAL)
# Placement's own advice for wide provider trees (placement/conf in 16.0.0):
# cap the candidates it generates ([placement] max_allocation_candidates; 1000
# is what Nova asks for, its max_placement_results) and enable
# [workarounds] optimize_for_wide_provider_trees (bug 2126751). Its docs also
# suggest the breadth-first strategy for wide trees: not set here.
RECOMMENDED_MAX_CANDIDATES = 1000
RECOMMENDED_SETTINGS = {
    "placement": {"max_allocation_candidates": RECOMMENDED_MAX_CANDIDATES},
    "workarounds": {"optimize_for_wide_provider_trees": True},
}
# A busy core stops by itself after this long, or when this process is gone.
BUSY_MAX_SECONDS = 3600.0

FLAT = "resources=VCPU:2,MEMORY_MB:2048,DISK_GB:20"


@dataclasses.dataclass(frozen=True)
class RequestShape:
    name: str
    cloud: str  # the synthetic cloud shape it is asked of
    query: str  # Placement's query string; {name} is a provider of the cloud
    about: str
    expected: Callable[[int], int]  # candidates expected for n compute nodes
    # Candidates Placement builds before cutting to limit (None: as expected).
    built: Callable[[int], int] | None = None

    def resolve(self, scenario) -> str:
        return parity.resolve_placeholders(self.query, scenario)


REQUESTS: tuple[RequestShape, ...] = (
    RequestShape("flat", "flat", FLAT, "one provider per host has all three classes", lambda n: n),
    RequestShape(
        "flat_limit10", "flat", FLAT + "&limit=10", "the flat request, first 10 (Placement builds all, then cuts)",
        lambda n: min(n, 10),
    ),
    RequestShape(
        "flat_limit1000", "flat", FLAT + "&limit=1000", "the flat request with the limit Nova sends",
        lambda n: min(n, 1000),
    ),
    RequestShape(
        "required_trait_all", "flat", FLAT + "&required=HW_CPU_X86_AVX2", "a required trait every host has",
        lambda n: n,
    ),
    RequestShape(
        "forbidden_trait", "flat", FLAT + "&required=!CUSTOM_LEGACY", "every tenth host has the forbidden trait",
        lambda n: n - (n + 9) // 10,
    ),
    RequestShape(
        "numa_same_subtree",
        "numa",
        "resources_CPU=VCPU:2,MEMORY_MB:2048&required_CPU=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1"
        "&same_subtree=_CPU,_NET&resources=DISK_GB:20&group_policy=none",
        "CPU and memory from one NUMA node, a VF from the PF under that node, disk from the host",
        lambda n: 2 * n,
    ),
    RequestShape(
        "numa_same_subtree_limit1000",
        "numa",
        "resources_CPU=VCPU:2,MEMORY_MB:2048&required_CPU=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1"
        "&same_subtree=_CPU,_NET&resources=DISK_GB:20&group_policy=none&limit=1000",
        "the NUMA request with the limit Nova sends", lambda n: min(2 * n, 1000),
    ),
    RequestShape(
        "granular_isolate", "numa", "resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate",
        "two single-VCPU groups on different NUMA nodes", lambda n: 2 * n,
    ),
    RequestShape(
        "shared_storage", "shared", FLAT, "VCPU and memory from the host, disk from its aggregate's sharing pool",
        lambda n: n,
    ),
    RequestShape(
        "wide_isolate_3",
        "wide",
        "resources_G1=VGPU:1&resources_G2=VGPU:1&resources_G3=VGPU:1&group_policy=isolate",
        "three single-VGPU groups over eight one-unit GPUs: 8*7*6 = 336 per host",
        lambda n: 336 * n,
    ),
    RequestShape(
        "wide_isolate_3_limit10",
        "wide",
        "resources_G1=VGPU:1&resources_G2=VGPU:1&resources_G3=VGPU:1&group_policy=isolate&limit=10",
        "the same, first 10: Placement still builds all 336 per host (bug 2070257), the graph stops at 10",
        lambda n: 10,
        built=lambda n: 336 * n,
    ),
    RequestShape(
        "wide_isolate_3_limit1000",
        "wide",
        "resources_G1=VGPU:1&resources_G2=VGPU:1&resources_G3=VGPU:1&group_policy=isolate&limit=1000",
        "the same with the limit Nova sends", lambda n: min(336 * n, 1000), built=lambda n: 336 * n,
    ),
    RequestShape(
        "wide_in_tree_4",
        "wide",
        "resources=VCPU:2,MEMORY_MB:2048&in_tree={cn00000}&resources_G1=VGPU:1&resources_G2=VGPU:1"
        "&resources_G3=VGPU:1&resources_G4=VGPU:1&group_policy=isolate",
        "a targeted host (in_tree) with four single-VGPU groups: 8*7*6*5 = 1,680 candidates",
        lambda n: 1680,
    ),
)


class BenchMismatch(RuntimeError):
    """The engines disagreed; ``results`` holds everything measured up to then."""

    def __init__(self, message: str, results: dict):
        super().__init__(message)
        self.results = results


def requests_for(shape: str) -> list[RequestShape]:
    return [r for r in REQUESTS if r.cloud == shape]


# -- measuring ------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclasses.dataclass
class Timings:
    wall_ms: list[float]
    client_cpu_ms: list[float]  # CPU time of this Python process during each run
    server_cpu_ms: list[float] | None  # CPU time of the Neo4j JVM during each run (None: not measurable)
    body: bytes
    gc_regime: str = "on"
    gc_collections: int = 0  # cycle collections that ran during the timed runs
    sql_ms: list[float] | None = None  # Placement: time inside the driver's execute, per run
    sql_statements: int | None = None  # Placement: statements per run


class _SQLTimer:
    """Time spent inside the database driver's ``execute`` on one SQLAlchemy engine
    (``before_cursor_execute`` / ``after_cursor_execute``). On SQLite ``execute``
    runs a statement up to its first row and the rest are stepped while Python
    fetches them, so this is a lower bound of the database's share there; the
    MariaDB and PostgreSQL drivers read the whole result inside ``execute``."""

    def __init__(self, engine):
        self.engine, self.ms, self.statements, self._started = engine, 0.0, 0, []

    def _before(self, *_args):
        self._started.append(time.perf_counter())

    def _after(self, *_args):
        self.ms += (time.perf_counter() - self._started.pop()) * 1000
        self.statements += 1

    def __enter__(self) -> "_SQLTimer":
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


@contextlib.contextmanager
def _graph_collector_pause_lifted():
    """The graph engine pauses the cycle collector around its search by itself; with the
    collector "on" for both engines that pause is lifted, so both run under the same rules."""
    own = candidates._cycle_collector_paused
    candidates._cycle_collector_paused = contextlib.nullcontext
    try:
        yield
    finally:
        candidates._cycle_collector_paused = own


@contextlib.contextmanager
def _collections_counted(counter: list[int]):
    """Count the cycle collections that start while open (``counter[0]``)."""

    def callback(phase, _info):
        if phase == "start":
            counter[0] += 1

    gc.callbacks.append(callback)
    try:
        yield
    finally:
        gc.callbacks.remove(callback)


def _in_regime(work: Callable[[], bytes], regime: str) -> Callable[[], bytes]:
    """``work`` with the cycle collector paused around it (``"paused"``), or as it is (``"on"``)."""
    if regime == "on":
        return work

    def paused() -> bytes:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return work()
        finally:
            if was_enabled:
                gc.enable()

    return paused


def process_cpu_ns(pid: int | None) -> int | None:
    """CPU time (ns) used so far by the live threads of process ``pid`` (/proc/<pid>/task/*/schedstat)."""
    if not pid:
        return None
    total, found = 0, False
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
            found = True
        except (OSError, ValueError, IndexError):
            continue  # a thread that has just ended
    return total if found else None


def _timed(work: Callable[[], bytes], repeat: int, server_pid: int | None = None, regime: str = "on",
           sql_engine=None) -> Timings:
    """One warm-up call, then ``repeat`` timed ones: wall time, this process's CPU time and,
    for a local Neo4j, the JVM's CPU time, each in ms. The CPU figures are less disturbed
    than wall time by other work on a shared machine. ``regime``: the cycle collector
    ``"on"`` or ``"paused"`` around each call; ``sql_engine``: also time the SQL sent to it."""
    work = _in_regime(work, regime)
    body = work()
    timings = Timings([], [], [] if process_cpu_ns(server_pid) is not None else None, body, regime)
    if sql_engine is not None:
        timings.sql_ms = []
    gc.collect()
    counter = [0]  # collections during the timed calls themselves (between them the collector may run)
    for _ in range(repeat):
        sql = _SQLTimer(sql_engine) if sql_engine is not None else contextlib.nullcontext()
        server_before = process_cpu_ns(server_pid) if timings.server_cpu_ms is not None else None
        with sql, _collections_counted(counter):
            cpu_before = time.process_time_ns()
            started = time.perf_counter()
            timings.body = work()
            wall = time.perf_counter() - started
            cpu = time.process_time_ns() - cpu_before
        timings.wall_ms.append(wall * 1000)
        timings.client_cpu_ms.append(cpu / 1e6)
        if sql_engine is not None:
            timings.sql_ms.append(sql.ms)
            timings.sql_statements = sql.statements
        if server_before is not None:
            server_after = process_cpu_ns(server_pid)
            timings.server_cpu_ms.append(max(0, (server_after or server_before) - server_before) / 1e6)
    timings.gc_collections = counter[0]
    return timings


def peak_python_mb(work: Callable[[], object]) -> float:
    """The peak of Python memory allocated during one call of ``work`` (tracemalloc, MB).

    An extra, untimed call: tracing slows every allocation down."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return _mb(peak)


@contextlib.contextmanager
def busy_core(max_seconds: float = BUSY_MAX_SECONDS):
    """A second process spinning on one core while open; yields a dict that gets its
    ``cpu_share`` (CPU time / wall time it got, 1.0 = a whole core) on leaving.

    It stops by itself after ``max_seconds``, or as soon as this process is gone."""
    code = (
        "import os, sys, time\n"
        "parent, end = os.getppid(), time.monotonic() + float(sys.argv[1])\n"
        "while time.monotonic() < end and os.getppid() == parent:\n"
        "    for _ in range(100000):\n"
        "        pass\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(max_seconds)])
    info: dict = {"pid": process.pid}
    started = time.perf_counter()
    try:
        yield info
    finally:
        cpu = process_cpu_ns(process.pid)
        wall = time.perf_counter() - started
        process.terminate()
        process.wait()
        info["cpu_share"] = round(cpu / 1e9 / wall, 2) if cpu is not None and wall > 0 else None


def _graph_call(graph: Graph, query: str) -> Callable[[], bytes]:
    """One graph request as timed: the search and the JSON encoding of its body."""

    def call() -> bytes:
        return json.dumps(candidates.find(graph, query)).encode()

    return call


def _placement_call(oracle: PlacementOracle, query: str) -> Callable[[], bytes]:
    def call() -> bytes:
        status, body = oracle.allocation_candidates_raw(query)
        if status != 200:
            raise RuntimeError(f"Placement answered {status} to {query}: {body[:300]!r}")
        return body

    return call


def graph_breakdown(graph: Graph, query: str, runs: int = 3, server_pid: int | None = None) -> dict:
    """Traced graph runs: time per Cypher query, the Python rest, and JSON encoding.

    Each Cypher call is also metered for CPU: this process's (the driver
    decoding the records, and turning them into dicts) and, for a Neo4j on
    this machine, the JVM's (planning, executing and serialising). Of
    ``runs`` traced runs, the one with the median total is returned (a single
    run on a shared machine can be far off)."""
    traced = sorted(
        (_traced_run(graph, query, server_pid) for _ in range(max(1, runs))), key=lambda b: b["find_ms"]
    )
    return dict(traced[len(traced) // 2], traced_runs=len(traced))


class _MeteredGraph:
    """A :class:`Graph` stand-in that meters every ``read``: wall time, this
    process's CPU time and the Neo4j JVM's CPU time (ms)."""

    def __init__(self, graph, server_pid: int | None, calls: list | None = None):
        self._graph, self._pid = graph, server_pid  # a Graph, or a Reader within a transaction
        # cypher, wall, client cpu, server cpu
        self.calls: list[tuple[str, float, float, float | None]] = [] if calls is None else calls

    def __getattr__(self, name):
        return getattr(self._graph, name)

    def reading(self, work):
        return self._graph.reading(lambda reader: work(_MeteredGraph(reader, self._pid, self.calls)))

    def read(self, cypher: str, **parameters) -> list[dict]:
        server_before = process_cpu_ns(self._pid)
        cpu_before = time.process_time_ns()
        started = time.perf_counter()
        rows = self._graph.read(cypher, **parameters)
        wall = (time.perf_counter() - started) * 1000
        client = (time.process_time_ns() - cpu_before) / 1e6
        server_after = process_cpu_ns(self._pid)
        server = None if server_before is None or server_after is None else (server_after - server_before) / 1e6
        self.calls.append((cypher.strip(), wall, client, server))
        return rows


def _traced_run(graph: Graph, query: str, server_pid: int | None = None) -> dict:
    metered = _MeteredGraph(graph, server_pid)
    trace: list = []
    started = time.perf_counter()
    body = candidates.find(metered, query, trace)
    found = time.perf_counter()
    json.dumps(body)
    encoded = time.perf_counter()
    find_ms = (found - started) * 1000
    cpu_by_cypher: dict[str, list[tuple[float, float | None]]] = {}
    for cypher, _wall, client, server in metered.calls:
        cpu_by_cypher.setdefault(cypher, []).append((client, server))
    queries: dict[str, dict] = {}
    for step in trace:
        entry = queries.setdefault(
            step.name, {"ms": 0.0, "rows": 0, "calls": 0, "client_cpu_ms": 0.0, "server_cpu_ms": 0.0}
        )
        entry["ms"] += step.milliseconds
        entry["rows"] += step.rows
        entry["calls"] += 1
        pending = cpu_by_cypher.get(step.text)
        client, server = pending.pop(0) if pending else (None, None)
        entry["client_cpu_ms"] = None if client is None or entry["client_cpu_ms"] is None else (
            entry["client_cpu_ms"] + client)
        entry["server_cpu_ms"] = None if server is None or entry["server_cpu_ms"] is None else (
            entry["server_cpu_ms"] + server)

    def total(key: str) -> float | None:
        values = [q[key] for q in queries.values()]
        return None if not values or None in values else round(sum(values), 2)

    def rounded(value):
        return None if value is None else round(value, 2)

    return {
        "find_ms": round(find_ms, 2),
        "cypher_ms": total("ms"),
        "cypher_client_cpu_ms": total("client_cpu_ms"),  # the driver receiving and decoding records
        "cypher_server_cpu_ms": total("server_cpu_ms"),  # the Neo4j JVM (None: not on this machine)
        "python_ms": round(find_ms - (total("ms") or 0), 2),  # parsing, combining, summaries
        "json_ms": round((encoded - found) * 1000, 2),
        "queries": {
            name: {**q, "ms": round(q["ms"], 2), "client_cpu_ms": rounded(q["client_cpu_ms"]),
                   "server_cpu_ms": rounded(q["server_cpu_ms"])}
            for name, q in queries.items()
        },
    }


# -- memory -----------------------------------------------------------------------------


def _proc_status(pid: int | str) -> dict[str, int]:
    """VmRSS / VmHWM (bytes) from /proc/<pid>/status."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def listening_pid(port: int) -> int | None:
    """The pid of the process on this machine listening on TCP ``port`` (None if not found or not ours)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(proc.name)
        except OSError:
            continue
    return None


def neo4j_pid_for(uri: str) -> int | None:
    parsed = urlparse(uri)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return listening_pid(parsed.port or 7687)


def _mb(n: int | float | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


def memory_snapshot(graph: Graph, neo4j_pid: int | None) -> dict:
    """This process's peak RSS and the Neo4j JVM's RSS (now, peak) and heap in use (now)."""
    own = _proc_status("self")
    snapshot = {
        "python_peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "python_rss_mb": _mb(own.get("VmRSS")),
        "neo4j_rss_mb": None,
        "neo4j_peak_rss_mb": None,
        "neo4j_heap_used_mb": None,
        "neo4j_heap_max_mb": None,
    }
    if neo4j_pid:
        jvm = _proc_status(neo4j_pid)
        snapshot["neo4j_rss_mb"] = _mb(jvm.get("VmRSS"))
        snapshot["neo4j_peak_rss_mb"] = _mb(jvm.get("VmHWM"))
    if heap := neo4j_heap(graph):
        snapshot["neo4j_heap_used_mb"] = _mb(heap["used"])
        snapshot["neo4j_heap_max_mb"] = _mb(heap["max"])
    return snapshot


def neo4j_heap(graph: Graph) -> dict | None:
    """The JVM heap's ``used`` and ``max`` (bytes), through JMX; None where JMX
    cannot be read (not every Neo4j allows it, e.g. Aura)."""
    try:
        rows = graph.read("CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes RETURN attributes")
        return rows[0]["attributes"]["HeapMemoryUsage"]["value"]["properties"]
    except Exception:
        return None


# -- the machine ------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def bolt_round_trip(graph: Graph, runs: int = 30) -> dict:
    """Median and minimum time (ms) of a trivial query (``RETURN 1``) through ``Graph.read``, in
    its own transaction: the fixed cost of a Cypher call (a search's calls share one transaction,
    so each of them costs less)."""
    graph.read("RETURN 1 AS one")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        graph.read("RETURN 1 AS one")
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(percentile(times, 50), 2), "min": round(min(times), 2)}


def _git(*args: str) -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip() if out.returncode == 0 else None


def code_version() -> dict:
    """The workbench commit, and whether the graph engine had uncommitted changes when measured."""
    changed = _git("status", "--porcelain", "--", "workbench/engine")
    return {"commit": _git("rev-parse", "--short", "HEAD"),
            "engine_uncommitted_changes": None if changed is None else sorted(
                line[3:] for line in changed.splitlines())}


def machine_info(graph: Graph) -> dict:
    info = graph.server_info()
    settings = {}
    try:
        rows = graph.read(
            "SHOW SETTINGS YIELD name, value WHERE name IN "
            "['server.memory.heap.max_size', 'server.memory.pagecache.size', 'db.memory.transaction.total.max'] "
            "RETURN name, value"
        )
        settings = {r["name"]: r["value"] for r in rows if r["value"] is not None}
    except Exception:  # SHOW SETTINGS needs privileges some servers withhold
        pass
    if heap := neo4j_heap(graph):
        settings["jvm_heap_max"] = f"{heap['max'] / 2**30:.2f}GiB"
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "neo4j_version": f"{info['version']} {info['edition']}",
        "neo4j_uri": info["uri"],
        "neo4j_settings": settings,
        "neo4j_driver": _version("neo4j"),
        "neo4j_rust_ext": _version("neo4j-rust-ext"),  # the driver's Rust record decoder, if installed
        "placement_version": _version("openstack-placement"),
        "sqlalchemy": _version("SQLAlchemy"),
        "bolt_round_trip_ms": bolt_round_trip(graph),
        "workbench": code_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- the run ----------------------------------------------------------------------------


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class _Plan:
    """How a run measures (the options of :func:`run` the per-cloud steps need)."""

    repeat: int
    allow_mismatch: bool
    max_candidates: int
    rest_load_max: int
    neo4j_pid: int | None
    gc_regimes: tuple[str, ...]
    postgres: str | None
    mariadb: str | None
    busy: bool
    say: Callable[[str], None]


def run(
    compute_nodes: list[int],
    shapes: list[str],
    repeat: int = DEFAULT_REPEAT,
    *,
    graph: Graph | None = None,
    uri: str | None = None,
    allow_mismatch: bool = False,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    rest_load_max: int = DEFAULT_REST_LOAD_MAX,
    neo4j_pid: int | None = None,
    postgres: str | None = None,
    mariadb: str | None = None,
    fills: tuple = (0.0,),
    gc_regimes: tuple[str, ...] = GC_REGIMES,
    busy: bool = False,
    warm_up_s: float = WARM_UP_SECONDS,
    progress: Callable[[str], None] | None = _stderr,
) -> dict:
    """Benchmark every (size, cloud shape, fill) and every request shape that fits the cloud.

    Returns ``{"machine", "settings", "requests", "results", "load", "skipped",
    "mismatches", "memory"}``; each result is ``{"compute_nodes", "cloud",
    "fill", "request", "gc", "query", "candidates", "graph": {"p50_ms", "p25_ms",
    "p75_ms", ...}, "placement_sqlite": {...}, "placement_sqlite_recommended":
    {...} or None, "ratio_p50", "ratio_p50_best", "graph_breakdown", ...}``, one
    per cycle-collector regime in ``gc_regimes`` (``"on"``, ``"paused"``, see the
    module docstring). Raises :class:`BenchMismatch` (carrying the partial
    results) at the first disagreement between the engines unless ``allow_mismatch``.

    ``graph`` (an open :class:`Graph`, whose database is emptied!) or else
    ``uri`` (default ``NEO4J_URI`` or the local server) says which Neo4j to use.
    ``postgres`` / ``mariadb`` (server URLs, see :mod:`workbench.comparison.postgres`
    and :mod:`workbench.comparison.mariadb`): Placement also runs on a database
    there, checked and timed the same way (``"placement_postgresql"``,
    ``"placement_mariadb"`` in each result). ``fills``: see
    :func:`workbench.synthetic.cloud`. ``busy``: a second process keeps one core
    busy while each request is timed.
    """
    say = progress or (lambda _m: None)
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for shape in shapes:
        if shape not in synthetic.SHAPES:
            raise ValueError(f"unknown cloud shape {shape!r}; choose from {', '.join(synthetic.SHAPES)}")
    fills = tuple(synthetic.parse_fill(str(f)) for f in fills)
    if not gc_regimes or set(gc_regimes) - set(GC_REGIMES):
        raise ValueError(f"gc regimes {gc_regimes!r}: choose from {', '.join(GC_REGIMES)}")
    own_graph = graph is None
    if own_graph:
        graph = Graph.connect(uri)
    try:
        if neo4j_pid is None:
            neo4j_pid = neo4j_pid_for(graph.uri)
        plan = _Plan(repeat, allow_mismatch, max_candidates, rest_load_max, neo4j_pid, tuple(gc_regimes),
                     postgres, mariadb, busy, say)
        results = {
            "machine": machine_info(graph),
            "settings": {
                "repeat": repeat,
                "warm_up": 1,
                "max_candidates": max_candidates,
                "neo4j_pid": neo4j_pid,
                "placement": None,
                "placement_recommended": RECOMMENDED_SETTINGS,
                "placement_postgresql": postgres,
                "placement_mariadb": mariadb,
                "fills": [synthetic.fill_label(f) for f in fills],
                "gc_regimes": list(gc_regimes),
                "gc": "on: the cycle collector runs during both engines' timed calls (the graph engine's own "
                "pause lifted); paused: paused around each engine's whole timed call (gc.disable/enable), as the "
                "graph engine pauses it around its search",
                "busy": busy,
                "graph_timed": "candidates.find() + json.dumps(body), through the Neo4j Python driver (Bolt)",
                "cpu": "CPU time per request: Placement = this process (time.process_time); graph = this process "
                "+ the Neo4j JVM (sum of /proc/<pid>/task/*/schedstat), when Neo4j runs on this machine",
                "placement_timed": "in-process WSGI call of GET /allocation_candidates (app built once; "
                "sqlite in memory; no HTTP, response body not decoded)",
                "placement_sql": "SQL = time inside the DBAPI cursor's execute (SQLAlchemy before/after_cursor_execute"
                "); on SQLite the rows after the first are stepped while Python fetches them, so SQL is a lower "
                "bound there; Python = wall - SQL",
                "memory": "python_*: this process (Placement, its SQLite and the graph client together; "
                "getrusage peak); neo4j_rss/peak_rss: /proc/<jvm pid>/status VmRSS/VmHWM; "
                "neo4j_heap_used: JMX java.lang:type=Memory, sampled after each cloud; per request, "
                "peak_python_mb: the peak of Python memory allocated during one extra call of each engine "
                "(tracemalloc)",
            },
            "requests": [
                {"name": r.name, "cloud": r.cloud, "query": r.query, "about": r.about}
                for r in REQUESTS
                if r.cloud in shapes
            ],
            "results": [],
            "load": [],
            "skipped": [],
            "mismatches": [],
        }
        results["settings"]["neo4j_warm_up_s"] = warm_up_neo4j(graph, shapes, warm_up_s, say)
        for n in compute_nodes:
            for shape in shapes:
                for fill in fills:
                    _bench_cloud(graph, n, shape, fill, results, plan)
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["memory"] = _memory_summary(results["load"])
        return results
    finally:
        if own_graph:
            graph.close()


def warm_up_neo4j(graph: Graph, shapes: list[str], seconds: float, say: Callable[[str], None]) -> float:
    """Ask every request shape of a small cloud of each shape for ``seconds`` in all.

    A freshly started Neo4j runs its query code interpreted until the JVM
    has compiled it; without this the first cloud timed (100 hosts) measured
    the JIT, not the engine (3 to 6 times slower in one run). Placement runs
    in this Python process and has nothing to warm."""
    started = time.perf_counter()
    for shape in shapes:
        scenario = synthetic.cloud(WARM_UP_HOSTS, shape)
        loader.load(graph, scenario, reset=True)
        queries = [r.resolve(scenario) for r in requests_for(shape)]
        until = time.perf_counter() + seconds / len(shapes)
        while time.perf_counter() < until:
            for query in queries:
                candidates.find(graph, query)
    elapsed = round(time.perf_counter() - started, 1)
    say(f"warmed up Neo4j for {elapsed} s ({WARM_UP_HOSTS}-host clouds, every request shape)")
    return elapsed


def _memory_summary(loads: list[dict]) -> dict:
    def peak(key: str) -> float | None:
        return max(((e["memory"] or {}).get(key) or 0 for e in loads), default=0) or None

    return {
        "python_peak_rss_mb": _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024),
        "neo4j_peak_rss_mb": peak("neo4j_peak_rss_mb"),
        "neo4j_heap_used_max_sampled_mb": peak("neo4j_heap_used_mb"),
    }


def _timed_load(entry: dict, key: str, work: Callable[[], object]) -> None:
    started = time.perf_counter()
    work()
    entry[key] = round(time.perf_counter() - started, 2)


def _bench_cloud(graph, n, shape, fill, results, plan: _Plan):
    say = plan.say
    scenario = synthetic.cloud(n, shape, fill)
    providers = len(scenario.providers)
    label = synthetic.fill_label(fill)
    tag = f"[{n} {shape} fill {label}]"
    say(f"{tag} loading {providers} providers and {len(scenario.consumers)} consumers into Neo4j ({graph.uri})")
    started = time.perf_counter()
    loaded = loader.load(graph, scenario, reset=True)
    graph_s = time.perf_counter() - started
    say(f"{tag} Neo4j: {graph_s:.1f} s in {loaded['transactions']} transaction(s); loading Placement (object layer)")
    load_entry = {
        "compute_nodes": n,
        "cloud": shape,
        "fill": label,
        "providers": providers,
        "consumers": len(scenario.consumers),
        "graph_s": round(graph_s, 2),
        "placement_s": None,
        "placement_loader": "object layer (PlacementOracle.load_bulk)",
        "placement_rest_s": None,
        "memory": None,
    }
    results["load"].append(load_entry)
    oracles: dict[str, PlacementOracle] = {}  # result key -> Placement on that database
    try:
        oracles["placement_sqlite"] = PlacementOracle()
        if results["settings"]["placement"] is None:
            results["settings"]["placement"] = oracles["placement_sqlite"].config()
        _timed_load(load_entry, "placement_s", lambda: oracles["placement_sqlite"].load_bulk(scenario))
        say(f"{tag} Placement: {load_entry['placement_s']:.1f} s")
        if providers <= plan.rest_load_max:
            say(f"{tag} also loading Placement through its REST API, for comparison")
            with PlacementOracle() as rest:
                _timed_load(load_entry, "placement_rest_s", lambda: rest.load(scenario))
            say(f"{tag} Placement over REST: {load_entry['placement_rest_s']:.1f} s")
        for key, option, name in (("placement_postgresql", "postgres", "PostgreSQL"),
                                  ("placement_mariadb", "mariadb", "MariaDB")):
            server = getattr(plan, option)
            if server:
                oracles[key] = PlacementOracle(**{option: server})
                _timed_load(load_entry, f"{key}_s", lambda: oracles[key].load_bulk(scenario))
                say(f"{tag} Placement on {name} (object layer): {load_entry[f'{key}_s']:.1f} s")
        for shape_request in requests_for(shape):
            _bench_request(graph, oracles, scenario, n, label, shape_request, results, plan)
        load_entry["memory"] = memory_snapshot(graph, plan.neo4j_pid)  # with this cloud still in both engines
    finally:
        for oracle in oracles.values():
            oracle.close()
        gc.collect()
    mem = load_entry["memory"]
    say(
        f"{tag} memory: python peak {mem['python_peak_rss_mb']} MB; Neo4j RSS {mem['neo4j_rss_mb']} MB "
        f"(peak {mem['neo4j_peak_rss_mb']} MB), heap used {mem['neo4j_heap_used_mb']} MB"
    )


def _check(graph, oracle: PlacementOracle, query: str, what: str, cap: int | None = None) -> parity.Verdict:
    """Both engines' answers judged (:mod:`workbench.comparison.parity`); ``cap``: Placement runs
    with ``max_allocation_candidates`` set to it, and may stop there."""
    verdict = parity.compare_capped(graph, oracle, query, cap) if cap else parity.compare(graph, oracle, query)
    if verdict.difference and what:
        verdict.difference = f"{what}: {verdict.difference}"
    return verdict


def _bench_request(graph, oracles: dict, scenario, n, fill: str, shape_request, results, plan: _Plan):
    say = plan.say
    tag = f"[{n} {shape_request.cloud} fill {fill}] {shape_request.name}:"
    query = shape_request.resolve(scenario)
    identity = {"compute_nodes": n, "cloud": shape_request.cloud, "fill": fill, "request": shape_request.name,
                "query": query}
    expected = (shape_request.built or shape_request.expected)(n)
    if expected > plan.max_candidates:
        results["skipped"].append(
            {**identity, "reason": f"about {expected:,} candidates expected, above the cap of "
                                   f"{plan.max_candidates:,} (--max-candidates)"}
        )
        say(f"{tag} skipped (about {expected:,} candidates)")
        return
    say(f"{tag} checking both engines agree")
    started = time.perf_counter()
    sqlite = oracles["placement_sqlite"]
    verdict = _check(graph, sqlite, query, "")
    check_s = time.perf_counter() - started
    recommended_reason = None
    if verdict.acceptable and verdict.status == 200:
        count = len(verdict.ours["allocation_requests"])
        limit = int(parse_qs(query).get("limit", ["0"])[0])
        if count > RECOMMENDED_MAX_CANDIDATES and not 0 < limit <= RECOMMENDED_MAX_CANDIDATES:
            recommended_reason = (f"max_allocation_candidates={RECOMMENDED_MAX_CANDIDATES} would cut the answer "
                                  f"({count:,} candidates)")
        for key, oracle in oracles.items():
            if key != "placement_sqlite" and verdict.acceptable:
                verdict = _check(graph, oracle, query, f"Placement ({key})")
        if verdict.acceptable and recommended_reason is None:
            sqlite.settings = RECOMMENDED_SETTINGS
            try:
                verdict = _check(graph, sqlite, query, "Placement at its recommended settings",
                                 cap=RECOMMENDED_MAX_CANDIDATES)
            finally:
                sqlite.settings = {}
    if not verdict.acceptable or verdict.status != 200:
        difference = verdict.difference or f"both answered {verdict.status}: {verdict.placement}"
        results["mismatches"].append({**identity, "placement_status": verdict.status,
                                      "graph_status": verdict.ours_status, "difference": difference[:4000]})
        say(f"{tag} MISMATCH: {difference[:500]}")
        if not plan.allow_mismatch:
            raise BenchMismatch(f"{tag} the engines disagree on {query}:\n{difference[:2000]}", results)
        return
    count = len(verdict.ours["allocation_requests"])
    say(f"{tag} agree on {count:,} candidates ({check_s:.1f} s)")
    breakdown = graph_breakdown(graph, query, runs=min(plan.repeat, 3), server_pid=plan.neo4j_pid)
    memory = {"graph": peak_python_mb(_graph_call(graph, query)),
              "placement_sqlite": peak_python_mb(_placement_call(sqlite, query))}
    for regime in plan.gc_regimes:
        with contextlib.ExitStack() as stack:
            busy = stack.enter_context(busy_core()) if plan.busy else None
            timings = _time_engines(graph, oracles, query, regime, recommended_reason is None, plan, tag)
        entry = {
            **identity,
            "gc": regime,
            "candidates": count,
            "provider_summaries": len(verdict.ours["provider_summaries"]),
            "repeat": plan.repeat,
            "busy": busy,
            "placement_recommended_skipped": recommended_reason,
            "graph_breakdown": breakdown,
            "divergence": verdict.divergence,
        }
        for key, t in timings.items():
            entry[key] = _stats(t, all_in_process=key != "graph")
            if key in memory:
                entry[key]["peak_python_mb"] = memory[key]
        graph_p50 = entry["graph"]["p50_ms"]
        entry["placement_sqlite_recommended"] = entry.get("placement_sqlite_recommended")
        for key in ("placement_sqlite", "placement_postgresql", "placement_mariadb"):
            if entry.get(key):
                suffix = key.removeprefix("placement_sqlite").removeprefix("placement")
                entry["ratio_p50" + suffix] = round(graph_p50 / entry[key]["p50_ms"], 3)
        best = min(t["p50_ms"] for k, t in entry.items()
                   if k in ("placement_sqlite", "placement_sqlite_recommended") and t)
        entry["ratio_p50_best"] = round(graph_p50 / best, 3)
        graph_cpu, placement_cpu = entry["graph"].get("cpu_p50_ms"), entry["placement_sqlite"].get("cpu_p50_ms")
        entry["ratio_cpu_p50"] = round(graph_cpu / placement_cpu, 3) if graph_cpu and placement_cpu else None
        results["results"].append(entry)
        recommended = entry["placement_sqlite_recommended"]
        say(
            f"{tag} gc {regime}: graph p50 {graph_p50:.1f} ms, Placement p50 {entry['placement_sqlite']['p50_ms']:.1f}"
            f" ms" + (f" (recommended settings {recommended['p50_ms']:.1f} ms)" if recommended else "")
            + f", ratio {entry['ratio_p50']} (to Placement's best {entry['ratio_p50_best']}); CPU ratio "
            f"{entry['ratio_cpu_p50']}" + (f"; busy core got {busy['cpu_share']} of a core" if busy else "")
        )


def _time_engines(graph, oracles: dict, query: str, regime: str, recommended: bool, plan: _Plan,
                  tag: str) -> dict[str, Timings]:
    """Each engine timed on ``query`` under one cycle-collector regime."""
    repeat, say = plan.repeat, plan.say
    say(f"{tag} gc {regime}: timing graph, 1 + {repeat} runs")
    with _graph_collector_pause_lifted() if regime == "on" else contextlib.nullcontext():
        timings = {"graph": _timed(_graph_call(graph, query), repeat, plan.neo4j_pid, regime)}
    sqlite = oracles["placement_sqlite"]
    say(f"{tag} gc {regime}: timing Placement, 1 + {repeat} runs")
    timings["placement_sqlite"] = _timed(_placement_call(sqlite, query), repeat, regime=regime,
                                         sql_engine=sqlite.engine)
    if recommended:
        say(f"{tag} gc {regime}: timing Placement at its recommended settings, 1 + {repeat} runs")
        sqlite.settings = RECOMMENDED_SETTINGS
        try:
            timings["placement_sqlite_recommended"] = _timed(_placement_call(sqlite, query), repeat, regime=regime,
                                                             sql_engine=sqlite.engine)
        finally:
            sqlite.settings = {}
    for key, oracle in oracles.items():
        if key != "placement_sqlite":
            say(f"{tag} gc {regime}: timing {key}, 1 + {repeat} runs")
            timings[key] = _timed(_placement_call(oracle, query), repeat, regime=regime, sql_engine=oracle.engine)
    return timings


def _stats(t: Timings, all_in_process: bool = False) -> dict:
    """Wall-time percentiles (median with the interquartile range and min-max as its spread) and CPU
    medians; ``cpu_p50_ms`` is the whole work's CPU time: this process's alone when ``all_in_process``
    (Placement; on a database server only this process's share), else plus the Neo4j JVM's (if measurable)."""
    stats = {
        "p50_ms": round(percentile(t.wall_ms, 50), 2),
        "p25_ms": round(percentile(t.wall_ms, 25), 2),
        "p75_ms": round(percentile(t.wall_ms, 75), 2),
        "p95_ms": round(percentile(t.wall_ms, 95), 2),
        "min_ms": round(min(t.wall_ms), 2),
        "max_ms": round(max(t.wall_ms), 2),
        "runs_ms": [round(x, 2) for x in t.wall_ms],
        "client_cpu_p50_ms": round(percentile(t.client_cpu_ms, 50), 2),
        "response_bytes": len(t.body),
        "gc": t.gc_regime,
        "gc_collections": t.gc_collections,
    }
    if t.sql_ms is not None:
        stats["sql_p50_ms"] = round(percentile(t.sql_ms, 50), 2)
        stats["python_p50_ms"] = round(percentile([w - q for w, q in zip(t.wall_ms, t.sql_ms)], 50), 2)
        stats["sql_statements"] = t.sql_statements
    if t.server_cpu_ms is not None:
        stats["server_cpu_p50_ms"] = round(percentile(t.server_cpu_ms, 50), 2)
        total = [a + b for a, b in zip(t.client_cpu_ms, t.server_cpu_ms)]
        stats["cpu_p50_ms"] = round(percentile(total, 50), 2)
    elif all_in_process:
        stats["cpu_p50_ms"] = stats["client_cpu_p50_ms"]
    return stats


# -- command line -----------------------------------------------------------------------


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on an argparse sub-parsers object; sets ``func``."""
    p = subparsers.add_parser(
        "bench",
        help="time allocation candidates on the graph vs the real Placement (in process, SQLite)",
        description=(
            "Generate synthetic clouds (workbench.synthetic), load each into Neo4j and into an in-process "
            "OpenStack Placement, check that both engines give the same answer to each request shape, then time "
            "them (Neo4j warmed up first on small clouds; then per request 1 warm-up + R runs; median, quartiles, "
            "p95). By default on empty, 70 % full and adversarially filled clouds, with Python's cycle collector "
            "on and paused for both engines, against Placement at its defaults and at its recommended settings "
            "for wide trees. "
            "Neo4j: NEO4J_URI or the local server; ITS DATABASE IS EMPTIED. "
            "Sizes 100, 1000 and 10000 by default; 100000 only when asked: on a 24 GB / 2-core machine the flat "
            "cloud at 100000 took about 12 minutes (repeat 3) and 1.6 GB in this process (Placement builds every "
            "candidate in Python, here); the tree shapes at that size were not tried and may not fit. Progress goes "
            "to stderr. Exit status 1 if the engines disagree (unless --allow-mismatch)."
        ),
    )
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--compute-nodes", type=int, nargs="+", metavar="N",
        help="cloud sizes in compute nodes (default 100 1000 10000; 100000 is slow, see above)",
    )
    sizes.add_argument("--quick", action="store_true", help="sizes 100 and 1000 only")
    sizes.add_argument(
        "--merge", type=Path, nargs="+", metavar="JSON",
        help="run nothing: combine earlier --json outputs into the --json/--markdown/--plot files",
    )
    p.add_argument(
        "--shape", nargs="+", choices=synthetic.SHAPES, default=list(synthetic.SHAPES), metavar="S",
        help=f"cloud shapes ({', '.join(synthetic.SHAPES)}; default all)",
    )
    p.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help=f"timed runs per engine (default {DEFAULT_REPEAT})"
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="write a PNG: latency against size per request")
    p.add_argument("--allow-mismatch", action="store_true", help="record disagreements and carry on")
    p.add_argument(
        "--max-candidates", type=int, default=DEFAULT_MAX_CANDIDATES,
        help=f"skip a request expected to return more candidates than this (default {DEFAULT_MAX_CANDIDATES})",
    )
    p.add_argument(
        "--rest-load-max", type=int, default=DEFAULT_REST_LOAD_MAX,
        help="also time Placement's REST load for clouds of at most this many providers "
        f"(default {DEFAULT_REST_LOAD_MAX}; 0: never)",
    )
    p.add_argument(
        "--postgres", action="store_true",
        help="also run Placement on PostgreSQL, as in production: a throwaway server on loopback from "
        "Debian's postgresql package (workbench.comparison.postgres), checked and timed like the SQLite one",
    )
    p.add_argument(
        "--mariadb", action="store_true",
        help="also run Placement on MariaDB, its most common backend: a throwaway server on loopback from "
        "Debian's mariadb-server package (workbench.comparison.mariadb), checked and timed like the SQLite one",
    )
    p.add_argument(
        "--fill", type=_fills, default=list(DEFAULT_FILLS), metavar="F[,F...]",
        help="clouds with existing allocations: comma-separated fractions of full hosts (0: empty) and/or "
        f"'{synthetic.ADVERSARIAL}' ({synthetic.ADVERSARIAL_FILL * 100:.0f} %% of the hosts full, those first in UUID "
        "order); default 0,0.7,adversarial",
    )
    p.add_argument(
        "--gc", choices=("on", "paused", "both"), default="both",
        help="Python's cycle collector during the timed calls, the same for both engines: on, paused around "
        "each call (as the graph engine pauses it around its search), or both regimes side by side (default)",
    )
    p.add_argument(
        "--busy", action="store_true",
        help="keep one core busy with a second process while timing (it stops by itself, at the latest after "
        f"{BUSY_MAX_SECONDS:.0f} s or when the benchmark ends)",
    )
    p.set_defaults(func=cmd_bench)
    return p


def _fills(text: str) -> list:
    try:
        return [synthetic.parse_fill(part.strip()) for part in text.split(",")]
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def cmd_bench(args: argparse.Namespace) -> int:
    from workbench import bench_report

    if args.merge:
        results = bench_report.merge([json.loads(path.read_text()) for path in args.merge])
        status = 0
    else:
        sizes = list(QUICK_SIZES if args.quick else (args.compute_nodes or DEFAULT_SIZES))
        status = 0
        try:
            with contextlib.ExitStack() as stack:
                postgres = stack.enter_context(LocalPostgres.temporary()).url if args.postgres else None
                mariadb = stack.enter_context(LocalMariaDB.temporary()).url if args.mariadb else None
                results = run(
                    sizes, args.shape, args.repeat, allow_mismatch=args.allow_mismatch,
                    max_candidates=args.max_candidates, rest_load_max=args.rest_load_max, postgres=postgres,
                    mariadb=mariadb, fills=tuple(args.fill), busy=args.busy,
                    gc_regimes=GC_REGIMES if args.gc == "both" else (args.gc,),
                )
        except BenchMismatch as mismatch:
            print(f"error: {mismatch}", file=sys.stderr)
            results, status = mismatch.results, 1
        except (PostgresUnavailable, MariaDBUnavailable) as missing:
            print(f"error: {missing}", file=sys.stderr)
            return 2
        except ImportError as missing:  # openstack-placement is the optional "oracle" extra
            print(f"error: the benchmark needs the real Placement ({missing}); "
                  "pip install 'placement-graph-workbench[oracle]'", file=sys.stderr)
            return 2
        if results["mismatches"]:
            status = 1 if not args.allow_mismatch else status
    written = bench_report.write(results, json_path=args.json, markdown_path=args.markdown, plot_path=args.plot)
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    if not written:
        print(bench_report.markdown(results))
    return status
