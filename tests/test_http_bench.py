"""``workbench bench-http`` and ``workbench claim-load`` at tiny sizes: the checks, not the timings.

Both services are really served over HTTP (gunicorn), the graph on the session's Neo4j and the real
Placement on a throwaway PostgreSQL. Placement's own behaviour under racing claims is reported by
claim-load but not asserted here (an overcommit seen on PostgreSQL with 2 workers is being investigated).
"""

from __future__ import annotations

import pytest

from workbench import synthetic
from workbench.bench import BenchMismatch
from workbench.cli import main
from workbench.comparison.postgres import LocalPostgres
from workbench.engine import loader
from workbench.overhttp import bench, checks, claims

ONE_MORE_VCPU = """
MATCH (:Consumer {uuid: $consumer})-[a:CONSUMES]->(:Inventory {resource_class: 'VCPU'})
SET a.used = a.used + 1
"""
QUIET = bench.Plan(repeat=2, warm_up=1, workers=1, neo4j_warm_up_s=0, requests=("flat_limit10", "forbidden_trait"),
                   say=lambda _m: None)


TWENTY = {"compute_nodes": 20, "cloud": "flat", "fill": "0"}


@pytest.fixture(scope="module")
def served(session_graph):
    """Both services over HTTP on the 20-host flat cloud: (graph, its scenario, results, the pair)."""
    graph, scenario = session_graph.graph, synthetic.cloud(20, "flat")
    results = bench.new_results(graph, QUIET, ["flat"], (0.0,))
    with LocalPostgres.temporary() as postgres:
        with bench.served_pair(graph, postgres, scenario, scenario, QUIET, results, "[20]") as pair:
            yield graph, scenario, results, pair


def test_bench_http_checks_then_times_both_services(served):
    _graph, scenario, results, pair = served
    bench.measure_cloud(*pair, scenario, TWENTY, "[20]", results, QUIET)
    assert results["mismatches"] == []
    # The synthetic flat cloud's expected answers (workbench.bench.REQUESTS): every host fits the flavor,
    # limit cuts, every tenth host has the forbidden trait.
    assert {r["request"]: r["candidates"] for r in results["results"]} == {
        "flat_limit10": 10, "forbidden_trait": 18}
    for row in results["results"]:
        for service in ("graph", "placement"):
            assert len(row[service]["runs_ms"]) == 2 and row[service]["p50_ms"] > 0
    assert results["load"][0]["providers"] == 20


def test_bench_http_refuses_to_time_services_that_disagree(served):
    """The graph's service now answers from 21 hosts, Placement still from 20: the answers differ, and
    nothing is timed."""
    graph, scenario, _results, pair = served
    loader.load(graph, synthetic.cloud(21, "flat"), reset=True)
    results = bench.new_results(graph, QUIET, ["flat"], (0.0,))
    with pytest.raises(BenchMismatch, match="disagree"):
        bench.measure_cloud(*pair, scenario, TWENTY, "[20 vs 21]", results, QUIET)
    assert [m["request"] for m in results["mismatches"]] == ["flat_limit10"]
    assert results["results"] == []


def test_claim_load_on_the_graph_fills_the_cloud_without_overcommit_or_loss(graph):
    """4 clients x 4 boots on 3 hosts with exactly 16 free slots, with 1 and 2 workers: every boot is
    claimed (the cloud ends full), nothing is over capacity, every claim is stored exactly as answered."""
    plan = claims.Plan(hosts=3, boots=4, graph_workers=(1, 2), max_retries=50, services=("graph",),
                       warm_up_boots=1, say=lambda _m: None)
    results = claims.run([4], plan, graph=graph)
    assert [(r["service"], r["workers"]) for r in results["runs"]] == [("graph", 1), ("graph", 2)]
    for run in results["runs"]:
        assert run["outcomes"] == {"claimed": 16}
        assert run["checks"]["ok"], run["checks"]
        assert run["puts"] == 16 + run["conflicts_409"]
    usage = graph.read(checks.GRAPH_INVENTORY_USAGE)
    assert all(r["used"] == (r["total"] - r["reserved"]) for r in usage)  # full, to the last slot


def test_the_checks_report_an_overcommit_a_lost_and_a_phantom_claim(graph):
    """The checks are not vacuous: a store written past capacity behind the API's back, a claim answered
    2xx that is not stored, and a failed one that is, are each reported."""
    scenario = claims.claim_cloud(2, 1)  # 2 hosts of 4 slots, 1 free
    loader.load(graph, scenario, reset=True)
    full = next(c for c in scenario.consumers if list(c.allocations.values())[0]["VCPU"] == 4)
    host = next(iter(full.allocations))
    # Test-only write: one more VCPU onto the running instance of the full host.
    graph.write(lambda tx: tx.run(ONE_MORE_VCPU, consumer=full.uuid).consume())
    boots = [
        {"consumer": "11111111-1111-4111-8111-111111111111", "outcome": "claimed",
         "allocations": {host: {"VCPU": 1}}},
        {"consumer": full.uuid, "outcome": "gave_up", "allocations": None},
    ]
    found = checks.in_graph(graph, boots)
    assert found["over_capacity"]["count"] == 1 and "VCPU: used" in found["over_capacity"]["shown"][0]
    assert found["lost"]["count"] == 1 and found["phantom"]["count"] == 1


@pytest.mark.parametrize("arguments, words", [
    (["bench-http", "--requests", "flat,nope"], "unknown request shape(s) ['nope']"),
    (["claim-load", "--services", "graph,nope"], "--services: unknown ['nope']"),
    (["claim-load", "--warm-up-boots", "-1"], "warm-up boots at least 0"),
])
def test_bad_options_are_refused_in_words_before_anything_starts(arguments, words, capsys):
    assert main(arguments + ["--out", "/nonexistent/never-written"]) == 2
    assert words in capsys.readouterr().err
