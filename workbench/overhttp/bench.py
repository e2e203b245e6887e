"""``workbench bench-http``: ``GET /allocation_candidates`` on the graph vs the real Placement, over HTTP.

The clouds and request shapes of ``workbench bench`` (:mod:`workbench.synthetic`,
:func:`workbench.bench.requests_for`), each cloud loaded into both services by their fast paths and served
alike (:mod:`workbench.overhttp.stack`: same gunicorn set-up and worker count; Placement on PostgreSQL,
the graph on the environment's Neo4j). One client with keep-alive (:class:`~workbench.overhttp.client.Client`)
asks both. For every request shape:

1. **answers compared first**, parsed, by :func:`workbench.comparison.parity.compare` (the same rules as
   the in-process benchmark, ``limit`` included); a disagreement is recorded and, unless
   ``allow_mismatch``, ends the run (:class:`workbench.bench.BenchMismatch`): a wrong answer is never timed;
2. ``warm_up`` untimed requests to each service, then ``repeat`` timed rounds, each round one request to
   each service in turn (so that a slow patch of a shared machine hits both alike). Timed: from sending
   the request to having read the whole body (not decoding it), p50 and p95;
3. the CPU time the service's process trees used during the timed rounds, per request: gunicorn
   (master and workers) and the database server (Neo4j JVM; PostgreSQL postmaster and backends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from typing import Callable, Iterator

from workbench import synthetic
from workbench.bench import (
    DEFAULT_MAX_CANDIDATES, WARM_UP_SECONDS, REQUESTS, BenchMismatch, machine_info, percentile, requests_for,
    warm_up_neo4j,
)  # fmt: skip
from workbench.comparison import parity
from workbench.comparison.postgres import LocalPostgres
from workbench.graphdb.db import Graph
from workbench.overhttp.client import Client
from workbench.overhttp.stack import Served, graph_served, placement_served

DEFAULT_SIZES = (100, 1000, 10000)
DEFAULT_REPEAT = 20
DEFAULT_WARM_UP = 5
SERVICES = ("graph", "placement")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Plan:
    repeat: int = DEFAULT_REPEAT
    warm_up: int = DEFAULT_WARM_UP
    workers: int = 2
    allow_mismatch: bool = False
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    neo4j_warm_up_s: float = WARM_UP_SECONDS  # the JVM compiles its query code first (see warm_up_neo4j)
    requests: tuple[str, ...] = ()  # only these request shapes (by name); all by default
    say: Callable[[str], None] = _stderr


def new_results(graph: Graph, plan: Plan, shapes: list[str], fills: tuple) -> dict:
    return {
        "kind": "bench-http",
        "machine": machine_info(graph),
        "settings": {
            "repeat": plan.repeat, "warm_up": plan.warm_up, "workers": plan.workers,
            "shapes": list(shapes), "fills": [synthetic.fill_label(f) for f in fills],
            "server": "gunicorn gthread, the same worker count and threads for both (workbench.api.serve)",
            "graph_database": "Neo4j of the environment (NEO4J_URI), loaded by workbench.engine.loader",
            "placement_database": "PostgreSQL (throwaway, loopback), loaded by PlacementOracle.load_bulk, "
            "then ANALYZE (as autovacuum would in service)",
            "client": "http.client, one kept-alive connection per service, the same code for both",
            "timed": "send the request .. whole body read (not decoded); rounds alternate the services",
            "server_cpu": "CPU time of the service's process trees during the timed rounds, per request",
        },
        "results": [], "load": [], "skipped": [], "mismatches": [],
    }  # fmt: skip


def run(sizes: list[int], shapes: list[str], plan: Plan, fills: tuple = (0.0,), graph: Graph | None = None) -> dict:
    """Every (size, cloud shape, fill) and every request shape that fits the cloud; see the module docstring.

    ``graph``: an open :class:`Graph` on the Neo4j the graph's service uses (ITS DATABASE IS EMPTIED);
    default ``Graph.connect()``, from the environment."""
    for shape in shapes:
        if shape not in synthetic.SHAPES:
            raise ValueError(f"unknown cloud shape {shape!r}; choose from {', '.join(synthetic.SHAPES)}")
    if plan.repeat < 1 or plan.workers < 1:
        raise ValueError("repeat and workers must be at least 1")
    if unknown := sorted(set(plan.requests) - {r.name for r in REQUESTS}):
        raise ValueError(f"unknown request shape(s) {unknown}; choose from {', '.join(r.name for r in REQUESTS)}")
    own = graph is None
    graph = graph or Graph.connect()
    try:
        results = new_results(graph, plan, shapes, fills)
        if plan.neo4j_warm_up_s > 0:
            results["settings"]["neo4j_warm_up_s"] = warm_up_neo4j(graph, shapes, plan.neo4j_warm_up_s, plan.say)
        with LocalPostgres.temporary() as postgres:
            for n in sizes:
                for shape in shapes:
                    for fill in fills:
                        scenario = synthetic.cloud(n, shape, fill)
                        tag = f"[{n} {shape} fill {synthetic.fill_label(fill)}]"
                        cloud = {"compute_nodes": n, "cloud": shape, "fill": synthetic.fill_label(fill)}
                        with served_pair(graph, postgres, scenario, scenario, plan, results, tag) as pair:
                            measure_cloud(*pair, scenario, cloud, tag, results, plan)
        return results
    finally:
        if own:
            graph.close()


@contextlib.contextmanager
def served_pair(graph: Graph, postgres: LocalPostgres, graph_scenario, placement_scenario, plan: Plan,
                results: dict, tag: str) -> Iterator[tuple[Served, Served]]:
    """Both services, the graph on ``graph_scenario`` and Placement on ``placement_scenario`` (the same
    cloud, except in a test that checks a mismatch is caught); load and start times added to ``results``."""
    load = {"cloud": graph_scenario.name, "providers": len(graph_scenario.providers),
            "consumers": len(graph_scenario.consumers)}
    plan.say(f"{tag} loading Neo4j and serving the graph ({plan.workers} workers)")
    started = time.perf_counter()
    with graph_served(graph, graph_scenario, plan.workers) as graph_side:
        load["graph_load_and_start_s"] = round(time.perf_counter() - started, 1)
        plan.say(f"{tag} loading PostgreSQL and serving Placement ({plan.workers} workers)")
        started = time.perf_counter()
        with placement_served(postgres, placement_scenario, plan.workers) as placement_side:
            load["placement_load_and_start_s"] = round(time.perf_counter() - started, 1)
            results["load"].append(load)
            plan.say(f"{tag} both up: graph {load['graph_load_and_start_s']} s, "
                     f"Placement {load['placement_load_and_start_s']} s (load and start)")
            yield graph_side, placement_side


def measure_cloud(graph_side: Served, placement_side: Served, scenario, cloud: dict, tag: str, results: dict,
                  plan: Plan) -> None:
    """Check then time every request shape of the cloud against both services; ``cloud`` is
    ``{"compute_nodes", "cloud", "fill"}``: what :func:`workbench.synthetic.cloud` made ``scenario`` from."""
    clients = {"graph": graph_side.client(), "placement": placement_side.client()}
    served = {"graph": graph_side, "placement": placement_side}
    try:
        for shape_request in requests_for(cloud["cloud"]):
            if plan.requests and shape_request.name not in plan.requests:
                continue
            query = shape_request.resolve(scenario)
            identity = {**cloud, "request": shape_request.name, "query": query}
            expected = (shape_request.built or shape_request.expected)(cloud["compute_nodes"])
            name = f"{tag} {shape_request.name}:"
            if expected > plan.max_candidates:
                results["skipped"].append({**identity, "reason": f"about {expected:,} candidates expected"})
                plan.say(f"{name} skipped (about {expected:,} candidates)")
                continue
            verdict = parity.compare(None, clients["placement"], query, ask=clients["graph"])
            if not verdict.agrees or verdict.status != 200:
                difference = verdict.difference or f"both answered {verdict.status}: {verdict.placement}"
                results["mismatches"].append({**identity, "placement_status": verdict.status,
                                              "graph_status": verdict.ours_status, "difference": difference[:4000]})
                plan.say(f"{name} MISMATCH: {difference[:500]}")
                if not plan.allow_mismatch:
                    raise BenchMismatch(f"{name} the services disagree on {query}:\n{difference[:2000]}", results)
                continue
            count = len(verdict.ours["allocation_requests"])
            plan.say(f"{name} agree on {count:,} candidates; timing {plan.warm_up} + {plan.repeat} rounds")
            entry = {**identity, "candidates": count, "repeat": plan.repeat,
                     **time_services(clients, served, query, plan)}
            graph_p50, placement_p50 = entry["graph"]["p50_ms"], entry["placement"]["p50_ms"]
            entry["ratio_p50"] = round(graph_p50 / placement_p50, 3)
            results["results"].append(entry)
            plan.say(f"{name} graph p50 {graph_p50:.1f} ms (p95 {entry['graph']['p95_ms']:.1f}), Placement p50 "
                     f"{placement_p50:.1f} ms (p95 {entry['placement']['p95_ms']:.1f}), ratio {entry['ratio_p50']}")
    finally:
        for client in clients.values():
            client.close()


def time_services(clients: dict[str, Client], served: dict[str, Served], query: str, plan: Plan) -> dict:
    path = f"/allocation_candidates?{query}"
    for name in SERVICES:
        for _ in range(plan.warm_up):
            _get(clients[name], path)
    walls: dict[str, list[float]] = {name: [] for name in SERVICES}
    sizes: dict[str, int] = {}
    cpu_before = {name: served[name].cpu_seconds() for name in SERVICES}
    for _ in range(plan.repeat):
        for name in SERVICES:
            started = time.perf_counter()
            sizes[name] = len(_get(clients[name], path))
            walls[name].append((time.perf_counter() - started) * 1000)
    cpu_after = {name: served[name].cpu_seconds() for name in SERVICES}
    return {name: {
        "p50_ms": round(percentile(walls[name], 50), 2),
        "p95_ms": round(percentile(walls[name], 95), 2),
        "min_ms": round(min(walls[name]), 2),
        "runs_ms": [round(w, 2) for w in walls[name]],
        "response_bytes": sizes[name],
        "server_cpu_ms_per_request": {
            tree: None if cpu_after[name][tree] is None or before is None
            else round((cpu_after[name][tree] - before) * 1000 / plan.repeat, 2)
            for tree, before in cpu_before[name].items()
        },
    } for name in SERVICES}  # fmt: skip


def _get(client: Client, path: str) -> bytes:
    status, body = client.raw("GET", path)
    if status != 200:
        raise RuntimeError(f"{client.url}{path} answered {status}: {body[:300]!r}")
    return body
