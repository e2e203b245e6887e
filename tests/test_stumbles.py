"""What a newcomer stumbled on (issue 14), fixed in the command line: inventories with
all their limits, which trees a sharing provider serves, aggregate names in query strings,
and provider names beside UUIDs in allocations. On a real Neo4j with
data/fixtures/numa_network.yaml (Placement's NUMANetworkFixture; see tests/test_viz.py):
ss1 shares DISK_GB 2000 through aggA with cn1 and cn2; numa0 has MEMORY_MB 2048 with
min_unit 512, max_unit 2048, step_size 256; the consumer numafx_numa0 holds VCPU 2 of numa0.
"""

from __future__ import annotations

import json

import pytest

from workbench import cli
from workbench.engine import allocations
from workbench.engine.candidates import find
from workbench.engine.providers import resolve_aggregate_names

NUMA = "data/fixtures/numa_network.yaml"


@pytest.fixture
def cli_env(monkeypatch, neo4j_uri):
    monkeypatch.setenv("NEO4J_URI", neo4j_uri)
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)


def test_providers_inventories_shows_every_limit_and_what_sharing_serves(scenario_graph, cli_env, capsys):
    _, scenario = scenario_graph(NUMA)
    assert cli.main(["providers", "--inventories"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["provider", "resource_class", "total", "reserved", "min_unit", "max_unit",
                                "step_size", "allocation_ratio", "used", "capacity"]
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in lines[1:] if len(line.split()) == 10}
    # total, reserved, min_unit, max_unit, step_size, ratio, used, capacity as the fixture sets them.
    assert rows["numa0", "MEMORY_MB"] == ["2048", "0", "512", "2048", "256", "1.0", "0", "2048"]
    assert rows["numa0", "VCPU"] == ["4", "0", "1", "4", "1", "1.0", "2", "4"]
    assert rows["cn2", "MEMORY_MB"][2:5] == ["1024", "2048", "128"]
    assert next(line for line in lines if line.lstrip().startswith("numa0")).startswith("  numa0")  # under cn1
    agg = scenario.provider("ss1").aggregates[0]
    assert f"ss1 serves cn1, cn2 through aggregate aggA ({agg})" in lines


def test_providers_aggregates_lists_names_with_uuids(scenario_graph, cli_env, capsys):
    _, scenario = scenario_graph(NUMA)
    assert cli.main(["providers", "--aggregates"]) == 0
    out = capsys.readouterr().out
    agg = scenario.provider("ss1").aggregates[0]
    assert [line.split(maxsplit=2) for line in out.splitlines()[1:]] == [["aggA", agg, "cn1, cn2, ss1"]]


def test_candidates_take_aggregate_names_and_say_so(scenario_graph, cli_env, capsys):
    graph, scenario = scenario_graph(NUMA)
    agg = scenario.provider("ss1").aggregates[0]
    by_uuid = f"resources=DISK_GB:10&member_of={agg}"
    assert cli.main(["candidates", "resources=DISK_GB:10&member_of=aggA", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == json.loads(json.dumps(find(graph, by_uuid)))  # still Placement's body
    assert f"note: aggregate name 'aggA' resolved to its UUID {agg}" in err
    assert len(json.loads(out)["allocation_requests"]) == 2  # ss1 and cn2 (in aggA) have DISK_GB
    # Every member_of form takes names: in:, forbidden (!), suffixed groups.
    resolved, _ = resolve_aggregate_names(graph, "resources1=DISK_GB:1&member_of1=!in:aggA,aggA&group_policy=none")
    assert resolved == f"resources1=DISK_GB:1&member_of1=!in:{agg},{agg}&group_policy=none"
    # Placement's own syntax is left verbatim, and an unknown name is left for Placement to refuse.
    for query in (by_uuid, "resources=DISK_GB:1&member_of=nope", "resources=DISK_GB:1"):
        assert resolve_aggregate_names(graph, query) == (query, [])
    assert cli.main(["candidates", "resources=DISK_GB:1&member_of=nope"]) == 1
    assert "valid UUID" in capsys.readouterr().err


def test_allocations_show_provider_names_beside_uuids(scenario_graph, cli_env, capsys):
    graph, scenario = scenario_graph(NUMA)
    consumer = next(c for c in scenario.consumers if scenario.provider("numa0").uuid in c.allocations).uuid
    assert cli.main(["allocations", consumer]) == 0
    out = capsys.readouterr().out
    assert f"consumer {consumer} (project numafx-project, user numafx-user):" in out
    assert out.splitlines()[2].split() == ["numa0", scenario.provider("numa0").uuid, "VCPU", "2"]
    assert cli.main(["allocations", consumer, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == allocations.get_allocations(graph, consumer)  # Placement's body
