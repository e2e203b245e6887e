"""The usage stored on each inventory is always the sum of its allocations.

The candidate search reads ``inv.used`` instead of summing the ``CONSUMES``
relationships on every request; every writer of allocations stores it in
its own transaction (workbench.engine.usages). What a user relies on: the
search sees exactly the usage ``GET /resource_providers/{uuid}/usages``
reports (which still sums the allocations), however the allocations were
written: by racing claims, replacements and releases; by a load; across a
server killed in the middle of claims, or a loading process killed in the
middle of a load; and in a graph written before usage was stored at all.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from workbench.engine import allocations as alloc
from workbench.engine import candidates, loader, usages
from workbench.engine.errors import Conflict
from workbench.graphdb.db import Graph
from workbench.scenario import parse

from processes import wait_until_gone

ROOT = Path(__file__).resolve().parent.parent

CLOUD = parse(
    {
        "providers": [
            {"name": f"cn{i}", "inventories": {"VCPU": 6, "MEMORY_MB": {"total": 4096, "max_unit": 4096}}}
            for i in range(3)
        ],
        "consumers": [
            {"name": "loaded-vm", "project": "p", "user": "u", "allocations": {"cn0": {"VCPU": 2, "MEMORY_MB": 512}}}
        ],
    },
    source="stored-usage-cloud",
)
PROVIDERS = [p.uuid for p in CLOUD.providers]

STORED_AND_SUMMED = """
MATCH (rp:Provider)-[:HAS_INVENTORY]->(inv:Inventory)
OPTIONAL MATCH (inv)<-[a:CONSUMES]-(:Consumer)
RETURN rp.uuid AS provider, inv.resource_class AS resource_class, inv.used AS stored,
       coalesce(sum(a.used), 0) AS summed, toInteger((inv.total - inv.reserved) * inv.allocation_ratio) AS capacity
"""


def assert_stored_is_the_sum(graph: Graph) -> dict:
    """Every inventory's stored usage is the sum of its allocations, within capacity;
    returns (provider, class) -> usage."""
    rows = graph.read(STORED_AND_SUMMED)
    assert rows
    wrong = [r for r in rows if r["stored"] != r["summed"]]
    assert not wrong, wrong
    assert all(r["stored"] <= r["capacity"] for r in rows)
    return {(r["provider"], r["resource_class"]): r["stored"] for r in rows}


def assert_the_search_sees_the_usages(graph: Graph) -> None:
    """The usage the search reports in its summaries is what GET .../usages reports."""
    summaries = candidates.find(graph, "resources=VCPU:1")["provider_summaries"]
    for rp, summary in summaries.items():
        reported = usages.provider_usages(graph, rp)["usages"]
        assert {rc: r["used"] for rc, r in summary["resources"].items()} == reported


def _claim_loop(graph: Graph, seed: int, rounds: int, errors: list, written: list) -> None:
    """Claims, replacements and releases at random, as a busy scheduler would send them."""
    rng = random.Random(seed)
    mine: list[str] = []
    try:
        for _ in range(rounds):
            action = rng.random()
            try:
                if mine and action < 0.3:
                    alloc.delete_allocations(graph, mine.pop(rng.randrange(len(mine))))
                    written.append("release")
                elif mine and action < 0.5:
                    consumer = rng.choice(mine)
                    held = alloc.get_allocations(graph, consumer)
                    wanted = {rng.choice(PROVIDERS): {"VCPU": rng.randint(1, 2)}}
                    alloc.set_allocations(graph, consumer, wanted, "p", "u", "INSTANCE", held["consumer_generation"])
                    written.append("replace")
                else:
                    consumer = str(uuid.uuid4())
                    wanted = {rng.choice(PROVIDERS): {"VCPU": rng.randint(1, 2), "MEMORY_MB": 256}}
                    alloc.set_allocations(graph, consumer, wanted, "p", "u")
                    mine.append(consumer)
                    written.append("claim")
            except Conflict:
                pass  # no room, or a racing write came first: Placement's 409, nothing written
    except Exception as error:  # noqa: BLE001 - reported by the test
        errors.append(error)


def _race(graph: Graph, threads: int, rounds: int, written: list | None = None) -> list:
    errors: list = []
    written = [] if written is None else written
    workers = [
        threading.Thread(target=_claim_loop, args=(graph, i, rounds, errors, written)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(w.is_alive() for w in workers), "a writer hung"
    return errors


def test_a_load_stores_the_usage_of_its_consumers(graph):
    loader.load(graph, CLOUD)
    found = assert_stored_is_the_sum(graph)
    assert found[PROVIDERS[0], "VCPU"] == 2 and found[PROVIDERS[1], "VCPU"] == 0
    assert_the_search_sees_the_usages(graph)


def test_racing_claims_replacements_and_releases_keep_the_stored_usage_right(graph):
    loader.load(graph, CLOUD)
    # 8 writers on 3 small hosts: most writes meet another on the same inventory.
    assert _race(graph, threads=8, rounds=25) == []
    assert_stored_is_the_sum(graph)
    assert_the_search_sees_the_usages(graph)


def test_a_graph_written_before_usage_was_stored_gets_it_on_connect(graph):
    loader.load(graph, CLOUD)
    alloc.set_allocations(graph, str(uuid.uuid4()), {PROVIDERS[1]: {"VCPU": 3}}, "p", "u")
    before = candidates.find(graph, "resources=VCPU:4")
    graph.run("MATCH (inv:Inventory) REMOVE inv.used")  # as an older workbench left it
    with Graph.connect(graph.uri) as again:
        assert_stored_is_the_sum(again)
        assert candidates.find(again, "resources=VCPU:4") == before


# -- crashes: a throwaway server of this module's own -----------------------------------------


@pytest.fixture(scope="module")
def server(own_server):
    return own_server


def test_a_server_killed_during_racing_claims_leaves_the_stored_usage_right(server):
    with server.connect() as graph:
        loader.load(graph, CLOUD, reset=True)
    # No retries: once the server is gone the writers fail at once.
    graph = Graph(server.driver(max_transaction_retry_time=0), server.uri, "neo4j")
    pid = server.status(query=False).pid
    written: list = []

    def kill_once_busy():
        deadline = time.monotonic() + 120
        while len(written) < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)

    threading.Thread(target=kill_once_busy).start()
    _race(graph, threads=6, rounds=1000, written=written)  # every writer stops with an error once the server is gone
    assert len(written) >= 40
    graph.close()
    wait_until_gone(pid)
    server.start()  # recovers the store after the crash
    with server.connect() as graph:
        assert_stored_is_the_sum(graph)
        assert_the_search_sees_the_usages(graph)


LOADER = """
import os, signal, sys
from workbench.graphdb.db import Graph
from workbench.engine import loader
sys.path.insert(0, {tests!r})
from test_load_recovery import BIG, BATCH
step, at = sys.argv[1], int(sys.argv[2])

def progress(name, done, of):
    if (name, done) == (step, at):
        os.kill(os.getpid(), signal.SIGKILL)  # the loading process dies, mid-load

loader.load(Graph.connect(), BIG, reset=True, batch=BATCH, progress=progress)
"""


@pytest.mark.parametrize("step, at", [("consumers", 2), ("committed", 1)])
def test_a_loading_process_killed_mid_load_leaves_the_stored_usage_right(server, step, at):
    # Killed after some of its consumer transactions (undone on connect: the
    # previous graph comes back) or after its commit point (finished on connect).
    with server.connect() as graph:
        loader.load(graph, CLOUD, reset=True)
        alloc.set_allocations(graph, str(uuid.uuid4()), {PROVIDERS[2]: {"VCPU": 5}}, "p", "u")
        before = assert_stored_is_the_sum(graph)
    env = dict(os.environ, NEO4J_URI=server.uri, NEO4J_USER="neo4j", NEO4J_PASSWORD=server.credentials()[1])
    done = subprocess.run(
        [sys.executable, "-c", LOADER.format(tests=str(ROOT / "tests")), step, str(at)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with _connect_once_recovered(server) as graph:
        after = assert_stored_is_the_sum(graph)
        if step == "committed":
            assert sum(after.values()) == 2 * 300  # test_load_recovery.BIG: 300 consumers of 2 VCPU
        else:
            assert after == before
        assert_the_search_sees_the_usages(graph)


def _connect_once_recovered(server) -> Graph:
    """Connect (which recovers the dead load) until the journal is gone: until
    the server has noticed the dead loader's connection, its lease looks held
    and recovery stands back."""
    deadline = time.monotonic() + 60
    while True:
        graph = server.connect()
        if not graph.read("MATCH (j:_Load) RETURN j") or time.monotonic() > deadline:
            return graph
        graph.close()
        time.sleep(0.5)
