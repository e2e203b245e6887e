"""Loading scenarios into the real Neo4j, and the CLI commands around it.

Every expected number is computed from the parsed scenario (the file is the
specification), never hard-coded: the tests hold for any edit of demo.yaml.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from workbench import cli
from workbench.engine import loader
from workbench.engine.providers import provider_trees
from workbench.scenario import load_file, parse

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "scenarios" / "demo.yaml"

SMALL = parse(
    {
        "name": "small",
        "providers": [
            {"name": "lonely", "inventories": {"VCPU": 2}, "aggregates": ["agg_small"], "traits": ["CUSTOM_SMALL"]},
        ],
        "consumers": [{"name": "tiny", "project": "p", "user": "u", "allocations": {"lonely": {"VCPU": 1}}}],
    },
    source="small",
)


@pytest.fixture
def demo():
    return load_file(DEMO)


@pytest.fixture
def cli_env(monkeypatch, neo4j_uri):
    # The session's server, with the credentials conftest exported for it.
    monkeypatch.setenv("NEO4J_URI", neo4j_uri)
    monkeypatch.delenv("NEO4J_DATABASE", raising=False)


def snapshot(graph) -> dict:
    """Everything a failed or refused load must leave as it was."""
    return {
        "labels": graph.read("MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n ORDER BY label"),
        "relationships": graph.read("MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n ORDER BY type"),
        "providers": graph.read("MATCH (p:Provider) RETURN p.uuid, p.name, p.generation ORDER BY p.uuid"),
        "consumers": graph.read("MATCH (c:Consumer) RETURN c.uuid, c.generation, c.project_id ORDER BY c.uuid"),
        "allocations": graph.read(
            "MATCH (c:Consumer)-[a:CONSUMES]->(i:Inventory)<-[:HAS_INVENTORY]-(p:Provider) "
            "RETURN c.uuid, p.uuid, i.resource_class, a.used ORDER BY c.uuid, p.uuid, i.resource_class"
        ),
    }


def count(graph, pattern: str) -> int:
    return graph.read(f"MATCH {pattern} RETURN count(*) AS n")[0]["n"]


def lineage(scenario, provider) -> list[str]:
    """Names from the root down to ``provider``, following declared parents."""
    names = []
    while provider is not None:
        names.append(provider.name)
        provider = scenario.provider(provider.parent_uuid) if provider.parent_uuid else None
    return names[::-1]


# -- the loader ---------------------------------------------------------------------


def test_demo_loads_everything_it_declares(graph, demo):
    result = loader.load(graph, demo)
    assert (result["providers"], result["consumers"]) == (len(demo.providers), len(demo.consumers))

    providers = demo.providers
    all_traits = {t for p in providers for t in p.traits}
    all_aggregates = {a for p in providers for a in p.aggregates}
    allocations = [(c.uuid, rp, rc, n) for c in demo.consumers for rp, res in c.allocations.items() for rc, n in res.items()]

    assert count(graph, "(:Provider)") == len(providers)
    assert count(graph, "(:Provider)-[:HAS_INVENTORY]->(:Inventory)") == sum(len(p.inventories) for p in providers)
    assert count(graph, "(:Inventory)") == sum(len(p.inventories) for p in providers)
    assert count(graph, "(:Provider)-[:HAS_TRAIT]->(:Trait)") == sum(len(p.traits) for p in providers)
    assert count(graph, "(:Trait)") == len(all_traits)
    assert count(graph, "(:Provider)-[:MEMBER_OF]->(:Aggregate)") == sum(len(p.aggregates) for p in providers)
    assert count(graph, "(:Aggregate)") == len(all_aggregates)
    assert count(graph, "(:Consumer)") == len(demo.consumers)
    assert count(graph, "()-[:CONSUMES]->()") == len(allocations)

    # Custom catalogue entries exist so that queries naming them are valid.
    assert sorted(r["name"] for r in graph.read("MATCH (r:ResourceClass) RETURN r.name AS name")) == demo.resource_classes
    custom = graph.read("MATCH (t:Trait {custom: true}) RETURN t.name AS name ORDER BY name")
    assert [r["name"] for r in custom] == demo.traits

    # Aggregates named in the file keep their name.
    named = graph.read("MATCH (a:Aggregate) WHERE a.name IS NOT NULL RETURN a.uuid AS uuid, a.name AS name")
    assert {r["uuid"]: r["name"] for r in named} == demo.aggregate_names

    # Each consumer's identity and each allocation, exactly.
    consumers = graph.read(
        "MATCH (c:Consumer) RETURN c.uuid AS uuid, c.project_id AS project, c.user_id AS user, "
        "c.consumer_type AS type"
    )
    assert sorted((r["uuid"], r["project"], r["user"], r["type"]) for r in consumers) == sorted(
        (c.uuid, c.project, c.user, c.consumer_type) for c in demo.consumers
    )
    rows = graph.read(
        "MATCH (c:Consumer)-[a:CONSUMES]->(i:Inventory)<-[:HAS_INVENTORY]-(p:Provider) "
        "RETURN c.uuid AS c, p.uuid AS p, i.resource_class AS rc, a.used AS n"
    )
    assert sorted((r["c"], r["p"], r["rc"], r["n"]) for r in rows) == sorted(allocations)

    # Inventory fields as declared (defaults filled in), and the usage the
    # search reads: the sum of the consumers' allocations of each inventory.
    rows = graph.read(
        "MATCH (p:Provider)-[:HAS_INVENTORY]->(i:Inventory) RETURN p.uuid AS uuid, i {.*} AS inv"
    )
    stored = {(r["uuid"], r["inv"].pop("resource_class")): r["inv"] for r in rows}
    used = {(rp, rc): sum(n for _, p, c, n in allocations if (p, c) == (rp, rc)) for _, rp, rc, _ in allocations}
    assert stored == {
        (p.uuid, rc): {**inv.fields(), "used": used.get((p.uuid, rc), 0)}
        for p in providers
        for rc, inv in p.inventories.items()
    }


def test_parent_links_form_the_declared_trees(graph, demo):
    loader.load(graph, demo)
    links = graph.read("MATCH (p:Provider)-[:PARENT_OF]->(c:Provider) RETURN p.uuid AS parent, c.uuid AS child")
    assert sorted((r["parent"], r["child"]) for r in links) == sorted(
        (p.parent_uuid, p.uuid) for p in demo.providers if p.parent_uuid
    )
    parents = graph.read("MATCH (c:Provider) RETURN c.uuid AS uuid, COUNT { (c)<-[:PARENT_OF]-() } AS n")
    expected = {p.uuid: (0 if p.parent_uuid is None else 1) for p in demo.providers}
    assert {r["uuid"]: r["n"] for r in parents} == expected
    # No cycles: every provider reaches exactly one root.
    roots = graph.read(
        "MATCH (root:Provider)-[:PARENT_OF*0..]->(rp:Provider) WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() } "
        "RETURN rp.uuid AS uuid, collect(root.name) AS roots"
    )
    assert {r["uuid"]: r["roots"] for r in roots} == {p.uuid: [lineage(demo, p)[0]] for p in demo.providers}


def test_capacity_and_usage_read_back_match_the_arithmetic(graph, demo):
    loader.load(graph, demo)
    used: dict[tuple[str, str], int] = {}
    for consumer in demo.consumers:
        for rp, resources in consumer.allocations.items():
            for rc, amount in resources.items():
                used[rp, rc] = used.get((rp, rc), 0) + amount

    rows = provider_trees(graph)
    assert sorted(r["uuid"] for r in rows) == sorted(p.uuid for p in demo.providers)
    for row in rows:
        p = demo.provider(row["uuid"])
        assert row["name"] == p.name
        assert row["lineage"] == lineage(demo, p)
        assert (row["depth"], row["root"]) == (len(lineage(demo, p)) - 1, lineage(demo, p)[0])
        assert row["traits"] == sorted(p.traits)
        assert sorted(row["aggregates"]) == sorted(demo.aggregate_names.get(a, a) for a in p.aggregates)
        expected = [
            {
                "resource_class": rc,
                "total": inv.total,
                "reserved": inv.reserved,
                # Placement's capacity: int((total - reserved) * allocation_ratio).
                "capacity": int((inv.total - inv.reserved) * inv.allocation_ratio),
                "used": used.get((p.uuid, rc), 0),
            }
            for rc, inv in sorted(p.inventories.items())
        ]
        assert row["inventories"] == expected, p.name


def test_loading_twice_without_reset_is_refused_and_changes_nothing(graph, demo):
    loader.load(graph, demo)
    before = snapshot(graph)
    with pytest.raises(loader.LoadConflict) as caught:
        loader.load(graph, demo)
    assert "--reset" in str(caught.value) and str(demo.source) in str(caught.value)
    assert snapshot(graph) == before


def test_a_clashing_consumer_alone_is_refused_too(graph, demo):
    loader.load(graph, demo)
    before = snapshot(graph)
    other = dataclasses.replace(SMALL, consumers=[dataclasses.replace(SMALL.consumers[0], uuid=demo.consumers[0].uuid)])
    with pytest.raises(loader.LoadConflict):
        loader.load(graph, other)
    assert snapshot(graph) == before


def test_reset_replaces_the_contents(graph, demo):
    loader.load(graph, demo)
    loader.load(graph, SMALL, reset=True)
    assert [r["name"] for r in graph.read("MATCH (p:Provider) RETURN p.name AS name")] == ["lonely"]
    assert count(graph, "(:Consumer)") == 1
    assert count(graph, "(:ResourceClass)") == 0  # the demo's custom classes went too
    # Loading the same scenario again with reset gives the same graph, not a double one.
    loader.load(graph, demo, reset=True)
    first = snapshot(graph)
    loader.load(graph, demo, reset=True)
    assert snapshot(graph) == first
    assert count(graph, "(:Provider)") == len(demo.providers)


def _broken(scenario):
    """A scenario that passes validation in no parser but fails while being written.

    Built by hand (the parser should not produce it; see test_scenario's
    duplicate-consumer test): its second consumer breaks the consumer_uuid
    constraint after providers, inventories and traits were already written.
    """
    return dataclasses.replace(scenario, consumers=scenario.consumers * 2)


def test_a_load_that_fails_midway_leaves_the_graph_as_it_was(graph, demo):
    loader.load(graph, demo)
    before = snapshot(graph)
    with pytest.raises(Exception) as caught:
        loader.load(graph, _broken(SMALL))
    assert not isinstance(caught.value, loader.LoadConflict)
    assert snapshot(graph) == before


def test_a_load_with_reset_that_fails_midway_leaves_the_previous_graph(graph, demo):
    # Issue 16, item 2: the reset used to run first, so a write-time failure left an empty database.
    loader.load(graph, demo)
    before = snapshot(graph)
    with pytest.raises(Exception) as caught:
        loader.load(graph, _broken(SMALL), reset=True)
    assert not isinstance(caught.value, loader.LoadConflict)
    assert snapshot(graph) == before


def test_a_load_split_in_many_transactions_that_fails_leaves_the_previous_graph(graph, demo):
    # The same with one provider per transaction, so the failure comes after many commits.
    loader.load(graph, demo)
    before = snapshot(graph)
    with pytest.raises(Exception):
        loader.load(graph, _broken(demo), reset=True, batch=1)
    assert snapshot(graph) == before
    with pytest.raises(Exception):
        loader.load(graph, _broken(SMALL), batch=1)
    assert snapshot(graph) == before


def test_a_reset_load_in_many_transactions_gives_the_same_graph_as_in_one(graph, demo):
    loader.load(graph, demo, reset=True)
    whole = snapshot(graph)
    result = loader.load(graph, demo, reset=True, batch=1)
    assert snapshot(graph) == whole
    # One transaction per root tree and per consumer, and the commit.
    roots = sum(1 for p in demo.providers if p.parent_uuid is None)
    assert result["transactions"] == roots + len(demo.consumers) + 1
    # Nothing of the journal is left: no retired nodes, no marks.
    assert count(graph, "(n) WHERE n._load IS NOT NULL OR n:_Retired OR n:_Load") == 0


# -- the CLI --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, path, words",
    [
        ("providers:\n  - name: cn1\n    inventories:\n      VCPU: {total: 4, reserved: 5}\n",
         "providers[0].inventories.VCPU.reserved", ["greater than total"]),
        ("providers: [{name: cn1, traits: [NOT_A_TRAIT]}]\n", "providers[0].traits[0]", ["unknown trait"]),
        ("providers:\n  - name: cn1: oops\n", "line 2, column 14", ["not valid YAML"]),
        pytest.param(
            "providers: [{name: solo, inventories: {VCPU: 4}}]\n"
            "consumers:\n"
            "  - {name: vm1, project: p, user: u, allocations: {solo: {VCPU: 1}}}\n"
            "  - {name: vm1, project: p, user: u, allocations: {solo: {VCPU: 1}}}\n",
            "consumers[1].name", ["duplicate"],
        ),
        # Issue 16: with --reset these emptied the database, or loaded the last of two values.
        ("# nothing to see\n", "", ["holds no scenario", "providers: []"]),
        ("providers: [{name: a, inventories: {VCPU: 1}}]\nproviders: []\n", "line 2, column 1", ["duplicate key"]),
        (f"providers: [{{name: {'x' * 8200}}}]\n", "providers[0].name", ["at most 200"]),
    ],
    ids=["reserved > total", "unknown trait", "invalid YAML", "duplicate consumer", "empty file", "duplicate key",
         "8 KB name"],
)
@pytest.mark.parametrize("reset", [False, True], ids=["plain", "with --reset"])
def test_cli_load_of_a_bad_file_reports_and_leaves_the_graph_alone(
    graph, demo, cli_env, capsys, tmp_path, text, path, words, reset
):
    loader.load(graph, demo)
    before = snapshot(graph)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)

    status = cli.main(["load", str(bad), *(["--reset"] if reset else [])])

    out, err = capsys.readouterr()
    assert status != 0
    assert str(bad) in err and path in err
    for word in words:
        assert word in err
    assert "Traceback" not in out + err
    assert snapshot(graph) == before


def test_cli_load_of_a_missing_file(graph, cli_env, capsys, tmp_path):
    status = cli.main(["load", str(tmp_path / "absent.yaml")])
    _, err = capsys.readouterr()
    assert status != 0 and "absent.yaml" in err and "cannot read file" in err
    assert count(graph, "(n)") == 0


def test_cli_load_twice_needs_reset(graph, demo, cli_env, capsys):
    assert cli.main(["load", str(DEMO)]) == 0
    out, _ = capsys.readouterr()
    assert f"{len(demo.providers)} providers, {len(demo.consumers)} consumers" in out
    before = snapshot(graph)

    assert cli.main(["load", str(DEMO)]) != 0
    _, err = capsys.readouterr()
    assert "--reset" in err
    assert snapshot(graph) == before

    assert cli.main(["load", str(DEMO), "--reset"]) == 0
    assert snapshot(graph) == before  # same file, same graph


def test_cli_providers_prints_indented_trees(graph, demo, cli_env, capsys):
    loader.load(graph, demo)
    assert cli.main(["providers"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    # One line per provider: two spaces per level of nesting, then the name,
    # then (if it has inventory) "  [" and used/capacity per class.
    heads = {}
    for i, line in enumerate(lines):
        name = line.strip().split("  [")[0]
        if not line.lstrip().startswith(("traits:", "aggregates:")):
            heads[name] = (i, len(line) - len(line.lstrip(" ")))
    assert sorted(heads) == sorted(p.name for p in demo.providers)
    for p in demo.providers:
        position, indent = heads[p.name]
        assert indent == 2 * (len(lineage(demo, p)) - 1), p.name
        if p.parent_uuid:
            # Children are listed under their parent.
            assert heads[demo.provider(p.parent_uuid).name][0] < position
    # Capacity as used/capacity, e.g. for the parked bare-metal node 0/0.
    for p in demo.providers:
        for rc, inv in p.inventories.items():
            used = sum(c.allocations.get(p.uuid, {}).get(rc, 0) for c in demo.consumers)
            assert f"{rc} {used}/{inv.capacity}" in lines[heads[p.name][0]]


def test_cli_candidates_json(graph, demo, cli_env, capsys):
    loader.load(graph, demo)
    # Ironic gold nodes that are free and not parked: capacity 1, usage 0.
    gold = [
        p for p in demo.providers
        if "CUSTOM_BAREMETAL_GOLD" in p.inventories
        and p.inventories["CUSTOM_BAREMETAL_GOLD"].capacity
        - sum(c.allocations.get(p.uuid, {}).get("CUSTOM_BAREMETAL_GOLD", 0) for c in demo.consumers) >= 1
    ]  # fmt: skip
    assert gold  # the demo has a free gold node

    assert cli.main(["candidates", "resources=CUSTOM_BAREMETAL_GOLD:1", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) >= {"allocation_requests", "provider_summaries"}
    requests = [r["allocations"] for r in body["allocation_requests"]]
    assert sorted(requests, key=str) == sorted(
        ({p.uuid: {"resources": {"CUSTOM_BAREMETAL_GOLD": 1}}} for p in gold), key=str
    )
    assert set(body["provider_summaries"]) == {p.uuid for p in gold}
    for p in gold:
        summary = body["provider_summaries"][p.uuid]
        assert summary["resources"]["CUSTOM_BAREMETAL_GOLD"] == {"capacity": 1, "used": 0}
        assert summary["root_provider_uuid"] == p.uuid and summary["parent_provider_uuid"] is None


def test_cli_candidates_json_bad_query(graph, demo, cli_env, capsys):
    loader.load(graph, demo)
    # Placement answers 400 to an amount that is not a positive integer.
    status = cli.main(["candidates", "resources=VCPU:two", "--json"])
    assert status != 0
    body = json.loads(capsys.readouterr().out)
    assert list(body) == ["errors"] and len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["status"] == 400
    assert {"title", "code", "detail"} <= set(error)
    assert "VCPU" in error["detail"]
