"""The controlled experiment (issue 17): code counted per concern, and the hard case
(NUMA + VF ``same_subtree``, with ``group_policy=isolate``) answered three ways,
each against the real Placement 16.0.0 on the same cloud.

The hard case's expected answers are Placement's own: the one Cypher pattern,
the engine's Python combiner and the recursive-CTE SQL over Placement's
database must each give exactly the allocation requests Placement gives."""

from __future__ import annotations

import dataclasses

import pytest

from workbench import bench, synthetic
from workbench.comparison import experiment
from workbench.comparison.oracle import PlacementOracle
from workbench.engine import candidates, loader
from workbench.ids import derive_uuid
from workbench.notebook import scenario_path
from workbench.scenario import Consumer, load_file, parse

pytestmark = pytest.mark.neo4j

POLICIES = ("isolate", "none")


def _uuid(name: str) -> str:
    return derive_uuid("provider", name)


def _partly_full_numa_cloud():
    """Five synthetic NUMA hosts, the last full; of the others one PF has no VF
    left, one NUMA cell no memory left, and one host too little disk for 20 GB."""
    cloud = synthetic.cloud(5, "numa", 0.2)
    taken = {
        "cn00001_numa0_pf": {"SRIOV_NET_VF": 8},
        "cn00002_numa1": {"MEMORY_MB": 65536},
        "cn00003": {"DISK_GB": 1890},
    }
    extra = [
        Consumer(derive_uuid("consumer", f"partly_full_{name}"), "bench", "bench", "INSTANCE", {_uuid(name): used})
        for name, used in taken.items()
    ]
    return dataclasses.replace(cloud, name="numa-partly-full", consumers=cloud.consumers + extra)


# VFs in unusual places: on a NUMA cell itself (so only group_policy=none may take
# CPU and VF from one provider) and on a host above its cells (same_subtree upwards).
ODD_TREES = {
    "name": "odd-trees",
    "providers": [
        {"name": "h1", "inventories": {"DISK_GB": 100},
         "children": [{"name": "h1_numa0", "traits": ["HW_NUMA_ROOT"],
                       "inventories": {"VCPU": 8, "MEMORY_MB": 8192, "SRIOV_NET_VF": 2},
                       "children": [{"name": "h1_numa0_pf", "inventories": {"SRIOV_NET_VF": 4}}]}]},
        {"name": "h2", "inventories": {"DISK_GB": 100, "SRIOV_NET_VF": 4},
         "children": [{"name": "h2_numa0", "traits": ["HW_NUMA_ROOT"],
                       "inventories": {"VCPU": 8, "MEMORY_MB": 8192}},
                      {"name": "h2_other", "inventories": {"SRIOV_NET_VF": 4}}]},
    ],
}

CLOUDS = {
    "numa-empty": lambda: synthetic.cloud(4, "numa"),
    "numa-partly-full": _partly_full_numa_cloud,
    "odd-trees": lambda: parse(ODD_TREES, source="<odd trees>"),
}


@pytest.fixture(scope="module", params=sorted(CLOUDS))
def loaded(request, session_graph):
    cloud = CLOUDS[request.param]()
    graph = session_graph.fresh()
    loader.load(graph, cloud, reset=True)
    with PlacementOracle() as oracle:
        oracle.load_bulk(cloud)
        yield request.param, graph, oracle


@pytest.mark.parametrize("policy", POLICIES)
def test_hard_case_three_ways_equal_placement(loaded, policy):
    name, graph, oracle = loaded
    status, body = oracle.allocation_candidates(experiment.hard_case_query(policy))
    assert status == 200
    expected = experiment.candidate_set(body["allocation_requests"])
    assert experiment.candidate_set(experiment.hard_case_by_pattern(graph, policy)) == expected
    assert experiment.candidate_set(experiment.hard_case_by_combiner(graph, policy)) == expected
    assert experiment.candidate_set(experiment.hard_case_by_sql(oracle.engine, policy)) == expected


def test_hard_case_clouds_are_not_trivial(loaded):
    """The clouds really test something: answers exist, the partly full cloud loses
    exactly the candidates its full parts forbid, and isolate removes the cell that
    gives its own VFs."""
    name, graph, _ = loaded
    isolate = experiment.hard_case_by_pattern(graph, "isolate")
    none = experiment.hard_case_by_pattern(graph, "none")
    if name == "numa-empty":
        assert len(isolate) == 4 * 2  # each host: two cells, each with its PF
    if name == "numa-partly-full":
        # Of 5 hosts x 2 cells: host 4 full, host 3 without disk, cn00001_numa0's PF and
        # cn00002_numa1's memory used up: 10 - 2 - 2 - 1 - 1 = 4.
        assert len(isolate) == 4
    if name == "odd-trees":
        # h1: the cell's PF (isolate) or also the cell itself (none); h2: the host above the cell,
        # not h2_other (a sibling of the cell, not in its subtree).
        assert len(isolate) == 2 and len(none) == 3
    else:
        assert len(none) == len(isolate)


def test_code_by_concern_counts_every_concern_from_source():
    cloud = load_file(scenario_path("demo"))
    with PlacementOracle() as oracle:
        oracle.load_bulk(cloud)
        rows = experiment.code_by_concern(oracle, cloud)
    by_name = {r["concern"]: r for r in rows}
    named = {name for c in experiment.CONCERNS for name in c.queries}
    assert named == set(candidates.CYPHER)  # every named query belongs to exactly one concern
    assert sum(len(c.queries) for c in experiment.CONCERNS) == len(candidates.CYPHER)
    for concern in experiment.CONCERNS:
        row = by_name[concern.name]
        assert row["cypher_lines"] > 0 and row["placement_python_lines"] > 0
    # Every concern that asks Placement's database did so for the requests run;
    # limit paging is Python in Placement (it cuts the finished list).
    assert all(by_name[c.name]["placement_sql_statements"] > 0 for c in experiment.CONCERNS[:-1])
    assert by_name["limit paging"]["placement_sql_statements"] == 0


def test_counting_rules():
    assert experiment.code_lines("// a comment\nMATCH (n)\n\n  RETURN n // why\n", "//") == 2
    assert experiment.code_lines("-- a comment\nSELECT 1\n\nFROM t\n", "--") == 2
    source = 'def f(x):\n    """Doc\n    string."""\n    # comment\n\n    return (x +\n            1)\n'
    assert experiment.python_code_lines(source) == 3
    assert experiment.format_sql("SELECT a FROM t JOIN u ON t.id = u.id WHERE a = 1 AND b = 2").splitlines() == [
        "SELECT a", "FROM t", "JOIN u ON t.id = u.id", "WHERE a = 1", "AND b = 2"]
    one_query = ["SELECT a FROM t WHERE id IN (?, ?)", "SELECT a FROM t WHERE id IN (?)"]
    assert len(experiment.distinct_statements(one_query)) == 1


def test_bench_store_measures_both_stores_after_checking_them(session_graph):
    """``workbench bench-store`` on a tiny NUMA cloud: both stores answer every request as
    Placement does before they are timed, the split adds up, bytes and rows are counted
    per named query, and the hard case is answered four ways, each as Placement does."""
    from workbench.comparison import bench_store
    from workbench.comparison.postgres import LocalPostgres

    graph = session_graph.fresh()
    with LocalPostgres.temporary() as server:
        results = bench_store.run([3], ("graph", "sql"), 1, ["numa"], (0.0,), graph, server.url, lambda _m: None,
                                  warm_up_s=0)
    session_graph.loaded = None  # the run replaced the graph's contents
    assert results["mismatches"] == [] and results["skipped"] == []
    assert [r["request"] for r in results["results"]] == [r.name for r in bench.requests_for("numa")]
    for entry in results["results"]:
        assert set(entry["stores"]) == {"graph", "sql"}
        for timed in entry["stores"].values():
            assert timed["db_ms"] + timed["python_ms"] == pytest.approx(timed["search_ms"], abs=0.05)
            assert timed["bytes"] == sum(q["bytes"] for q in timed["queries"].values()) > 0
            assert timed["rows"] == sum(q["rows"] for q in timed["queries"].values()) > 0
    (hard,) = results["hard_case"]
    assert hard["candidates"] == 3 * 2  # two cells per host, each with its PF
    assert set(hard["ways"]) == set(bench_store.HARD_CASE_WAYS)
    assert all(way["agrees"] and way["p50_ms"] > 0 for way in hard["ways"].values())
    report = bench_store.markdown(results)
    assert "| 3 | numa | 0 | granular_isolate | 6 | sql |" in report


def test_bench_store_refuses_bad_options(capsys):
    from workbench import cli

    assert cli.main(["bench-store", "--stores", "sql"]) == 2
    assert "--stores 'sql'" in capsys.readouterr().err
    assert cli.main(["bench-store", "--repeat", "0"]) == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err
