"""``workbench claim-load``: concurrent boots, Nova's way, against each service; then nothing may be lost.

For each number of clients C and each service (the real Placement with ``workers`` gunicorn workers on
PostgreSQL; the graph with each of ``graph_workers``), a fresh cloud is loaded and served
(:mod:`workbench.overhttp.stack`), then C client **processes** (:mod:`workbench.overhttp.boots`) start
together and each makes ``boots`` boots. Processes, not threads: each boot decodes a candidates answer of
up to ``limit`` candidates in Python, and 32 threads would queue on one interpreter lock, so that the
client, not the service, would set the pace.

The request is a small flavor, ``VCPU:1, MEMORY_MB:512, DISK_GB:10``, with ``limit=1000``: Nova's
``[scheduler] max_placement_results`` default, what a Nova scheduler really sends.

The cloud (:func:`claim_cloud`) fills up during the run: ``hosts`` hosts of ``slots`` flavor-sized slots
each, pre-filled by running instances so that exactly ``C * boots`` slots are free. Every boot fits, but
only just: the last boots race for the last free slots, where claims conflict (409) and are retried.

Each run reports claims per second, per-boot latency (p50/p95, retries included), 409s, retries, the CPU
seconds of each server process tree, and the checks of :mod:`workbench.overhttp.checks` through the API
and in the store. Those checks are reported as found, for either service, never hidden or turned into an
exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import random
import sys
import time
from collections import Counter
from queue import Empty
from typing import Callable

from workbench.bench import machine_info, percentile
from workbench.comparison.postgres import LocalPostgres
from workbench.graphdb.db import Graph
from workbench.overhttp import checks
from workbench.overhttp.boots import client_process
from workbench.overhttp.stack import Served, graph_served, placement_served
from workbench.scenario import Scenario, parse

FLAVOR = {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 10}
LIMIT = 1000  # Nova's [scheduler] max_placement_results default
QUERY = "resources=" + ",".join(f"{rc}:{n}" for rc, n in FLAVOR.items()) + f"&limit={LIMIT}"
MIN_SLOTS = 4  # flavor-sized slots per host, at least
HOST_RESERVED = {"MEMORY_MB": 512, "DISK_GB": 10}  # held back for the host itself, as operators do
DEFAULT_MAX_RETRIES = 10
# The real Placement as shipped, and with the workaround for its retry bug
# (docs/upstream-bugs/allocation-retry-overcommit.md): no retry inside the
# failed transaction, so the loser of a race gets 409 and the client asks again.
PLACEMENT_VARIANTS = {
    "placement": (),
    "placement-retry-1": (("placement", "allocation_conflict_retry_count", "1"),),
}
SERVICES = (*PLACEMENT_VARIANTS, "graph")
DEFAULT_SECONDS = 600.0


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def claim_cloud(hosts: int, free_slots: int, seed: int = 13) -> Scenario:
    """``hosts`` hosts of ``max(MIN_SLOTS, ceil(free_slots / hosts))`` slots each, instances already running
    on all but ``free_slots`` slots (one consumer per host, holding what it uses, the hosts with free slots
    chosen at random with ``seed``)."""
    if hosts < 1 or free_slots < 1:
        raise ValueError("a claim cloud needs at least one host and one free slot")
    slots = max(MIN_SLOTS, math.ceil(free_slots / hosts))
    free = [0] * hosts
    every_slot = [h for h in range(hosts) for _ in range(slots)]
    for host in random.Random(seed).sample(every_slot, free_slots):
        free[host] += 1
    providers, consumers = [], []
    for h in range(hosts):
        name = f"cn{h:05d}"
        providers.append({"name": name, "inventories": {
            rc: {"total": slots * amount + HOST_RESERVED.get(rc, 0), "reserved": HOST_RESERVED.get(rc, 0)}
            for rc, amount in FLAVOR.items()}})
        if used := slots - free[h]:
            consumers.append({"name": f"{name}_running", "project": "running", "user": "running",
                              "allocations": {name: {rc: used * amount for rc, amount in FLAVOR.items()}}})
    return parse({"name": f"claim-{hosts}-{free_slots}", "providers": providers, "consumers": consumers},
                 source=f"<claim cloud: {hosts} hosts of {slots} slots, {free_slots} free>")


@dataclasses.dataclass
class Plan:
    hosts: int
    boots: int  # per client
    workers: int = 2  # Placement's gunicorn workers
    graph_workers: tuple[int, ...] = (1, 4)
    max_retries: int = DEFAULT_MAX_RETRIES
    seconds: float = DEFAULT_SECONDS  # no boot starts later than this into a run
    services: tuple[str, ...] = SERVICES
    warm_up_boots: int = 3  # per client, made and deleted before the start
    say: Callable[[str], None] = _stderr


def run(clients: list[int], plan: Plan, graph: Graph | None = None) -> dict:
    """Every (C, service, workers) run; see the module docstring. ``graph``: the Neo4j the graph's
    service uses (ITS DATABASE IS EMPTIED), default ``Graph.connect()``."""
    if plan.hosts < 1 or plan.boots < 1 or min(clients) < 1 or plan.warm_up_boots < 0:
        raise ValueError("hosts, boots and clients must be at least 1, warm-up boots at least 0")
    own = graph is None
    graph = graph or Graph.connect()
    try:
        results = {
            "kind": "claim-load",
            "machine": machine_info(graph),
            "settings": {
                "hosts": plan.hosts, "boots_per_client": plan.boots, "clients": list(clients),
                "placement_workers": plan.workers, "graph_workers": list(plan.graph_workers),
                "request": f"GET /allocation_candidates?{QUERY}, then PUT /allocations/{{new consumer}} "
                "(1.39, consumer_generation null) for a random candidate; on 409 ask again and retry",
                "max_retries": plan.max_retries, "max_seconds": plan.seconds,
                "warm_up_boots": f"{plan.warm_up_boots} per client, made and deleted before the start",
                "cloud": f"each host {MIN_SLOTS}+ flavor-sized slots, pre-filled so that clients x boots are free",
                "clients_are": "processes (multiprocessing, spawn), one kept-alive connection each",
                "placement_database": "PostgreSQL (throwaway, loopback), loaded by PlacementOracle.load_bulk, then ANALYZE",
                "graph_database": "Neo4j of the environment",
                "cpu": "CPU seconds of each process tree during the run: gunicorn master + workers; "
                "Neo4j JVM; PostgreSQL postmaster + backends",
            },
            "runs": [],
        }  # fmt: skip
        needs_postgres = any(service in PLACEMENT_VARIANTS for service in plan.services)
        with LocalPostgres.temporary() if needs_postgres else contextlib.nullcontext() as postgres:
            for c in clients:
                scenario = claim_cloud(plan.hosts, c * plan.boots)
                for service in plan.services:
                    for workers in plan.graph_workers if service == "graph" else (plan.workers,):
                        results["runs"].append(one_run(service, workers, c, scenario, graph, postgres, plan))
        return results
    finally:
        if own:
            graph.close()


def one_run(service: str, workers: int, c: int, scenario: Scenario, graph: Graph, postgres, plan: Plan) -> dict:
    tag = f"[{service} {workers}w C={c}]"
    plan.say(f"{tag} loading {len(scenario.providers)} hosts ({scenario.source}) and serving")
    served = (graph_served(graph, scenario, workers) if service == "graph"
              else placement_served(postgres, scenario, workers, PLACEMENT_VARIANTS[service]))
    with served as side:
        plan.say(f"{tag} {c} clients x {plan.boots} boots")
        entry = {"service": service, "workers": workers, "clients": c, "database": side.database,
                 "cloud": scenario.source, **load_run(side, c, plan)}
        plan.say(f"{tag} {entry['claimed']} claimed, {entry['claims_per_s']} claims/s, boot p50 "
                 f"{entry['boot_p50_ms']} ms p95 {entry['boot_p95_ms']} ms, {entry['conflicts_409']} x 409 "
                 f"({entry['conflict_rate']:.1%} of PUTs), outcomes {entry['outcomes']}; checking")
        providers = [p.uuid for p in scenario.providers]
        entry["checks"] = checks.verify(side, providers, entry.pop("boots"))
        verdict = "OK" if entry["checks"]["ok"] else "VIOLATIONS: " + "; ".join(
            f"{where} {name} {check['count']}" for where in ("api", "store")
            for name, check in entry["checks"][where].items() if check["count"])
        plan.say(f"{tag} checks {verdict}")
    return entry


def load_run(side: Served, c: int, plan: Plan) -> dict:
    """C client processes started together; their boots and what the service's processes spent."""
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Queue(), context.Event(), context.Queue()
    processes = [context.Process(target=client_process, daemon=True, args=(
        side.url, QUERY, plan.boots, seed, plan.max_retries, plan.seconds, plan.warm_up_boots, ready, go, results))
        for seed in range(c)]
    try:
        for process in processes:
            process.start()
        _collect(ready, processes, "starting")
        cpu_before, started = side.cpu_seconds(), time.perf_counter()
        go.set()
        boots = [record for _, records in _collect(results, processes, "running") for record in records]
        elapsed = time.perf_counter() - started
        cpu_after = side.cpu_seconds()
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    return summarise(boots, elapsed) | {"server_cpu_s": {
        tree: None if cpu_after[tree] is None or before is None else round(cpu_after[tree] - before, 2)
        for tree, before in cpu_before.items()}, "boots": boots}


def _collect(queue, processes, doing: str) -> list:
    """One item from each client process, read as they come (before any join: a full pipe blocks its
    writer); a client that died without sending one is an error, not a hang."""
    items = []
    while len(items) < len(processes):
        try:
            items.append(queue.get(timeout=1))
        except Empty:
            if dead := [p for p in processes if p.exitcode not in (None, 0)]:
                raise RuntimeError(f"{len(dead)} claim client(s) died while {doing} (exit {dead[0].exitcode})")
    return items


def summarise(boots: list[dict], elapsed: float) -> dict:
    claimed = [b for b in boots if b["outcome"] == "claimed"]
    latencies = [b["ms"] for b in boots if b["ms"] is not None]
    # Every 409 was a PUT; so was the last attempt of a boot that ended on a PUT's answer.
    puts = sum(len(b["conflicts"]) + (b["outcome"] == "claimed" or b["outcome"].startswith("PUT")) for b in boots)
    conflicts = sum(len(b["conflicts"]) for b in boots)
    return {
        "boots_made": len(boots),
        "claimed": len(claimed),
        "outcomes": dict(Counter(b["outcome"] for b in boots)),
        "elapsed_s": round(elapsed, 2),
        "claims_per_s": round(len(claimed) / elapsed, 1) if elapsed else None,
        "boot_p50_ms": round(percentile(latencies, 50), 1),
        "boot_p95_ms": round(percentile(latencies, 95), 1),
        "puts": puts,
        "conflicts_409": conflicts,
        "conflict_rate": conflicts / puts if puts else 0.0,
        "conflict_codes": dict(Counter(code for b in boots for code in b["conflicts"])),
        "retries": sum(b["attempts"] - 1 for b in boots),
        "errors_shown": [{"outcome": b["outcome"], "error": b.get("error")} for b in boots
                         if b["outcome"] not in ("claimed", "no_valid_host", "gave_up")][:5],
    }
