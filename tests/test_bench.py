"""Tests of ``workbench bench`` and of the oracle's bulk (object-layer) loader.

No timing is asserted: the machine is shared. What is checked is that a tiny
run produces the documented files and keys with both engines agreeing, and
that :meth:`PlacementOracle.load_bulk` leaves Placement exactly as the REST
load does.
"""

from __future__ import annotations

import argparse
import json

import pytest

from workbench import bench, bench_report, synthetic
from workbench.comparison.oracle import PlacementOracle


def _placement_state(oracle: PlacementOracle) -> dict:
    """Everything an operator sees of the providers through the API."""
    providers = oracle._check("GET", "/resource_providers")["resource_providers"]
    state = {
        "providers": sorted(providers, key=lambda p: p["uuid"]),
        "traits": sorted(oracle._check("GET", "/traits")["traits"]),
        "resource_classes": sorted(rc["name"] for rc in oracle._check("GET", "/resource_classes")["resource_classes"]),
    }
    for p in providers:
        uuid = p["uuid"]
        state[uuid] = {
            "inventories": oracle._check("GET", f"/resource_providers/{uuid}/inventories"),
            "traits": sorted(oracle._check("GET", f"/resource_providers/{uuid}/traits")["traits"]),
            "aggregates": sorted(oracle._check("GET", f"/resource_providers/{uuid}/aggregates")["aggregates"]),
            "generation": p["generation"],
        }
    return state


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_bulk_load_equals_rest_load(shape):
    scenario = synthetic.cloud(3, shape)
    with PlacementOracle() as rest, PlacementOracle() as bulk:
        rest.load(scenario)
        bulk.load_bulk(scenario)
        expected, got = _placement_state(rest), _placement_state(bulk)
        assert len(got["providers"]) == len(scenario.providers)
        assert got == expected
        # and they answer the same (the object layer's max_unit=1 default would give nothing here)
        query = next(r for r in bench.REQUESTS if r.cloud == shape).resolve(scenario)
        assert bulk.allocation_candidates(query) == rest.allocation_candidates(query)
        assert bulk.allocation_candidates(query)[1]["allocation_requests"]


def test_bulk_load_custom_classes_traits_and_consumers():
    from workbench.scenario import parse

    scenario = parse(
        {
            "providers": [
                {"name": "cn1", "traits": ["CUSTOM_FAST"], "aggregates": ["A", "B"],
                 "inventories": {"CUSTOM_MAGIC": {"total": 4, "max_unit": 2}, "VCPU": 8},
                 "children": [{"name": "cn1_numa0", "inventories": {"MEMORY_MB": 1024}}]},
            ],
            "consumers": [
                {"name": "vm1", "project": "p", "user": "u", "allocations": {"cn1": {"VCPU": 2}}},
            ],
        }
    )
    with PlacementOracle() as rest, PlacementOracle() as bulk:
        rest.load(scenario)
        bulk.load_bulk(scenario)
        assert _placement_state(bulk) == _placement_state(rest)
        vm1 = scenario.consumers[0].uuid
        assert bulk.get_allocations(vm1)["allocations"] == rest.get_allocations(vm1)["allocations"]


@pytest.mark.neo4j
def test_tiny_run_writes_documented_files(graph, tmp_path):
    results = bench.run([5], ["flat", "wide"], repeat=2, graph=graph, progress=None, rest_load_max=0, warm_up_s=0.2)
    assert not results["mismatches"]
    assert results["settings"]["neo4j_warm_up_s"] >= 0.2
    machine = results["machine"]
    for key in ("cpu_model", "cores", "memory_gb", "python", "neo4j_version", "placement_version", "date"):
        assert machine[key], key
    expected_requests = {r.name for r in bench.REQUESTS if r.cloud in ("flat", "wide")}
    assert {r["request"] for r in results["results"]} == expected_requests
    for r in results["results"]:
        assert r["compute_nodes"] == 5 and r["cloud"] in ("flat", "wide")
        assert r["query"] and "{" not in r["query"]  # placeholders resolved
        assert r["candidates"] > 0
        for engine in ("graph", "placement_sqlite"):
            assert r[engine]["p50_ms"] > 0 and r[engine]["p95_ms"] >= r[engine]["p50_ms"]
            assert len(r[engine]["runs_ms"]) == 2
        assert r["ratio_p50"] > 0
        breakdown = r["graph_breakdown"]
        assert breakdown["queries"] and breakdown["cypher_client_cpu_ms"] > 0
        assert breakdown["find_ms"] >= breakdown["cypher_ms"] > 0
    assert next(r for r in results["results"] if r["request"] == "flat_limit10")["candidates"] == 5
    assert [(e["compute_nodes"], e["cloud"]) for e in results["load"]] == [(5, "flat"), (5, "wide")]
    for e in results["load"]:
        assert e["providers"] == len(synthetic.cloud(5, e["cloud"]).providers)
        assert e["graph_s"] > 0 and e["placement_s"] > 0
        assert e["memory"]["python_peak_rss_mb"] > 0

    paths = bench_report.write(
        results, json_path=tmp_path / "b.json", markdown_path=tmp_path / "b.md", plot_path=tmp_path / "b.png"
    )
    assert len(paths) == 3
    data = json.loads((tmp_path / "b.json").read_text())
    assert set(data) >= {"machine", "results", "load"}
    text = (tmp_path / "b.md").read_text()
    assert "wide_in_tree_4" in text and machine["date"] in text and machine["cpu_model"] in text
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Merging keeps one row per (size, cloud, request): a later run's replaces an earlier one's.
    rerun = json.loads(json.dumps(data))
    rerun["results"][0]["graph"]["p50_ms"] = -1.0
    merged = bench_report.merge([data, rerun])
    assert len(merged["results"]) == len(data["results"]) and len(merged["load"]) == len(data["load"])
    assert [r["graph"]["p50_ms"] for r in merged["results"]].count(-1.0) == 1
    assert len(merged["machine"]["runs"]) == 2


def test_cli_parser_and_percentiles():
    parser = argparse.ArgumentParser()
    bench.add_bench_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", "--quick", "--shape", "flat", "numa", "--repeat", "3", "--json", "x.json"])
    assert args.quick and args.shape == ["flat", "numa"] and args.repeat == 3 and args.func is bench.cmd_bench
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--quick", "--compute-nodes", "10"])
    assert bench.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench.percentile([5.0], 95) == 5.0
    assert bench.percentile(list(range(101)), 95) == 95


@pytest.mark.neo4j
def test_mismatch_stops_the_run(graph, monkeypatch):
    """A disagreement is recorded and ends the run (never timed), unless allowed."""
    wrong = bench.RequestShape("bad", "flat", "resources=VCPU:1", "graph answers nothing", lambda n: n)
    monkeypatch.setattr(bench, "REQUESTS", (wrong,))
    monkeypatch.setattr(bench.parity.candidates, "find", lambda g, q, trace=None: {"allocation_requests": [],
                                                                                  "provider_summaries": {}})
    with pytest.raises(bench.BenchMismatch) as caught:
        bench.run([2], ["flat"], repeat=1, graph=graph, progress=None, rest_load_max=0, warm_up_s=0.2)
    assert caught.value.results["mismatches"][0]["request"] == "bad"
    assert not caught.value.results["results"]
    results = bench.run(
        [2], ["flat"], repeat=1, graph=graph, progress=None, rest_load_max=0, allow_mismatch=True, warm_up_s=0.2
    )
    assert len(results["mismatches"]) == 1 and not results["results"]
