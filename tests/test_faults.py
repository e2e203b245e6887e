"""Neo4j dies in the middle of a stream of claims.

A claim is one transaction: after the server is killed (SIGKILL, no clean
shutdown) and started again, every claim either happened whole or not at all,
no committed claim is lost, a claim retried after the crash does not
allocate twice, and no provider or quota is over its limit.

This test runs its own throwaway server (the session's is left alone), so it
costs two JVM starts.
"""

import os
import signal
import threading
import time
import uuid

import pytest

from workbench.engine import allocations, loader
from workbench.engine.errors import Conflict, PlacementError
from workbench.scenario import parse

from processes import wait_until_gone

CAPACITY = 30  # VCPU on the one provider
LIMIT = 24  # the project's VCPU quota: reached before the capacity


def test_claims_survive_a_killed_server(own_server):
    graph = own_server.connect()
    scenario = parse(
        {
            "providers": [{"name": "cn1", "inventories": {"VCPU": CAPACITY}}],
            "quotas": [{"project": "demo", "limits": {"VCPU": LIMIT}}],
        }
    )
    loader.load(graph, scenario, reset=True)
    provider = scenario.provider("cn1").uuid

    succeeded, refused, failed, attempted = [], [], [], []
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            consumer = str(uuid.uuid4())
            attempted.append(consumer)
            try:
                allocations.set_allocations(graph, consumer, {provider: {"VCPU": 1}}, "demo", "alice")
                succeeded.append(consumer)
            except PlacementError as error:
                refused.append((consumer, error))
            except Exception as error:  # the server is gone: the driver gave up
                failed.append((consumer, error))
                time.sleep(0.2)

    worker = threading.Thread(target=stream)
    worker.start()
    while len(succeeded) < 5:  # let a few claims land first
        time.sleep(0.05)
    pid = own_server.status(query=False).pid
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    restarted = own_server.start()  # notices the crash, recovers the store, starts again
    assert restarted.running
    deadline = time.monotonic() + 60
    while len(succeeded) + len(refused) < LIMIT + 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    worker.join(120)
    graph.close()

    graph = own_server.connect()
    rows = graph.read(
        "MATCH (c:Consumer)-[a:CONSUMES]->(:Inventory) RETURN c.uuid AS consumer, a.used AS used"
    )
    stored = {r["consumer"]: r["used"] for r in rows}
    assert len(rows) == len(stored), "a consumer holds more than one allocation: a claim was applied twice"
    assert set(succeeded) <= set(stored), "a claim reported as committed was lost"
    assert set(stored) <= set(attempted)
    assert sum(stored.values()) <= LIMIT <= CAPACITY
    # Every refusal is a clean Placement-style error: the quota, or a retried claim
    # that finds its own committed allocation (consumer generation conflict).
    assert all(isinstance(error, Conflict) for _, error in refused)
    retried = [c for c, error in refused if "consumer generation conflict" in error.detail]
    assert all(c in stored for c in retried)
    # The stream went on after the restart and filled the quota exactly.
    assert sum(stored.values()) == LIMIT
    graph.close()
