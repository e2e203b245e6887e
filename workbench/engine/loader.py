"""Write a validated scenario into Neo4j.

Every statement is a batched ``UNWIND`` over plain parameter lists, so a
10,000-host cloud is a handful of round trips. A scenario of up to
PROVIDERS_PER_TRANSACTION providers (every demo and fixture) is written in one
transaction: a failure anywhere rolls it all back. A larger one is written in
transactions of whole trees, and a failure removes what was already written.
Either way a failed load leaves nothing of itself behind. ``reset`` empties
the database first, in batches, after the scenario has been validated.
"""

from __future__ import annotations

import time

import neo4j

from workbench.db import Graph
from workbench.engine import quotas
from workbench.scenario import Scenario

# Custom catalogue entries: MERGE, so loading twice does not duplicate them.
CREATE_CUSTOM_CATALOGUE = """
UNWIND $classes AS name
MERGE (:ResourceClass {name: name})
WITH count(*) AS done
UNWIND $traits AS name
MERGE (t:Trait {name: name})
SET t.custom = true
"""

CREATE_PROVIDERS = """
UNWIND $providers AS p
CREATE (:Provider {uuid: p.uuid, name: p.name, generation: 0})
"""

LINK_CHILDREN = """
UNWIND $links AS link
MATCH (parent:Provider {uuid: link.parent}), (child:Provider {uuid: link.child})
CREATE (parent)-[:PARENT_OF]->(child)
"""

CREATE_INVENTORIES = """
UNWIND $inventories AS i
MATCH (rp:Provider {uuid: i.provider})
CREATE (rp)-[:HAS_INVENTORY]->(:Inventory {
    resource_class: i.resource_class, total: i.total, reserved: i.reserved,
    min_unit: i.min_unit, max_unit: i.max_unit, step_size: i.step_size,
    allocation_ratio: i.allocation_ratio})
"""

ADD_TRAITS = """
UNWIND $traits AS pair
MATCH (rp:Provider {uuid: pair.provider})
MERGE (t:Trait {name: pair.trait})
CREATE (rp)-[:HAS_TRAIT]->(t)
"""

ADD_AGGREGATES = """
UNWIND $aggregates AS pair
MATCH (rp:Provider {uuid: pair.provider})
MERGE (a:Aggregate {uuid: pair.aggregate})
ON CREATE SET a.name = pair.name
CREATE (rp)-[:MEMBER_OF]->(a)
"""

CREATE_CONSUMERS = """
UNWIND $consumers AS c
CREATE (:Consumer {uuid: c.uuid, project_id: c.project, user_id: c.user,
                   consumer_type: c.consumer_type, generation: 1})
"""

CREATE_ALLOCATIONS = """
UNWIND $allocations AS a
MATCH (c:Consumer {uuid: a.consumer})
MATCH (:Provider {uuid: a.provider})-[:HAS_INVENTORY]->(inv:Inventory {resource_class: a.resource_class})
CREATE (c)-[:CONSUMES {used: a.used}]->(inv)
"""

FIND_CLASHES = """
MATCH (rp:Provider) WHERE rp.uuid IN $uuids OR rp.name IN $names
RETURN rp.name AS name, rp.uuid AS uuid LIMIT 5
UNION
MATCH (c:Consumer) WHERE c.uuid IN $consumers
RETURN 'consumer' AS name, c.uuid AS uuid LIMIT 5
"""


class LoadConflict(ValueError):
    """The scenario clashes with what the database already holds."""


# A transaction holds all its changes in memory (bounded by the server's
# dbms.memory.transaction.total.max); above this many providers a load is split
# into transactions of whole trees.
PROVIDERS_PER_TRANSACTION = 10000
BATCH = 2000  # rows per UNWIND


def load(graph: Graph, scenario: Scenario, reset: bool = False) -> dict:
    """Load ``scenario``; with ``reset`` the database is emptied first.

    The scenario was validated when it was parsed, so by the time anything is
    deleted or written the input is known to be good. Emptying runs in
    batches of its own. A scenario of up to PROVIDERS_PER_TRANSACTION
    providers loads in one transaction; a larger one in several, each of whole
    trees, and if any of them fails the ones already committed are deleted
    again, so a failed load still leaves nothing behind.
    """
    started = time.perf_counter()
    if reset:
        graph.reset()
    else:
        _refuse_clashes(graph, scenario)
    chunks = list(scenario.tree_chunks(PROVIDERS_PER_TRANSACTION))
    try:
        for i, providers in enumerate(chunks):
            last = i == len(chunks) - 1
            params = _parameters(scenario, providers, last)
            graph.write(lambda tx, params=params: _write(tx, params))
    except Exception:
        if len(chunks) > 1:
            _remove(graph, scenario)
        raise
    return {
        "scenario": scenario.name,
        "providers": len(scenario.providers),
        "consumers": len(scenario.consumers),
        "transactions": len(chunks),
        "seconds": time.perf_counter() - started,
    }


def _write(tx: neo4j.ManagedTransaction, params: dict[str, list[dict]]) -> None:
    if params["catalogue"]:
        tx.run(CREATE_CUSTOM_CATALOGUE, **params["catalogue"]).consume()
    # Each statement UNWINDs the parameter list of the same name.
    for statement, key in (
        (CREATE_PROVIDERS, "providers"),
        (LINK_CHILDREN, "links"),
        (CREATE_INVENTORIES, "inventories"),
        (ADD_TRAITS, "traits"),
        (ADD_AGGREGATES, "aggregates"),
        (CREATE_CONSUMERS, "consumers"),
        (CREATE_ALLOCATIONS, "allocations"),
        (quotas.SET_LIMITS, "limits"),
    ):
        for start in range(0, len(params[key]), BATCH):
            tx.run(statement, {key: params[key][start : start + BATCH]}).consume()


def _refuse_clashes(graph: Graph, scenario: Scenario) -> None:
    clashes = graph.read(
        FIND_CLASHES,
        uuids=[p.uuid for p in scenario.providers],
        names=[p.name for p in scenario.providers],
        consumers=[c.uuid for c in scenario.consumers],
    )
    if clashes:
        found = ", ".join(f"{c['name']} ({c['uuid']})" for c in clashes)
        raise LoadConflict(
            f"{scenario.source}: the database already holds {found}; load with --reset to replace its contents"
        )


REMOVE_SCENARIO = """
// Undo a partly committed load: its consumers, providers and their inventories
// (the catalogue, consumers and quotas come in the last transaction, so never partly).
UNWIND $uuids AS uuid
MATCH (n {uuid: uuid}) WHERE n:Provider OR n:Consumer
OPTIONAL MATCH (n)-[:HAS_INVENTORY]->(inv:Inventory)
DETACH DELETE inv, n
"""

REMOVE_ORPHANS = """
// Trait and aggregate nodes the undone load created and nothing uses any more.
MATCH (n) WHERE (n:Aggregate OR (n:Trait AND n.custom IS NULL)) AND NOT EXISTS { (n)--() }
DELETE n
"""


def _remove(graph: Graph, scenario: Scenario) -> None:
    uuids = [c.uuid for c in scenario.consumers] + [p.uuid for p in scenario.providers]
    for start in range(0, len(uuids), BATCH):
        graph.run(REMOVE_SCENARIO, uuids=uuids[start : start + BATCH])
    graph.run(REMOVE_ORPHANS)


def _parameters(scenario: Scenario, providers: list, with_consumers: bool) -> dict[str, list[dict]]:
    """The UNWIND lists for these providers; the last transaction also carries the
    custom catalogue, the consumers and the quotas."""
    consumers = scenario.consumers if with_consumers else []
    quota_list = scenario.quotas if with_consumers else []
    return {
        "catalogue": {"classes": scenario.resource_classes, "traits": scenario.traits} if with_consumers else {},
        "providers": [{"uuid": p.uuid, "name": p.name} for p in providers],
        "links": [{"parent": p.parent_uuid, "child": p.uuid} for p in providers if p.parent_uuid],
        "inventories": [
            {"provider": p.uuid, "resource_class": rc, **inv.fields()}
            for p in providers
            for rc, inv in p.inventories.items()
        ],
        "traits": [{"provider": p.uuid, "trait": t} for p in providers for t in p.traits],
        "aggregates": [
            {"provider": p.uuid, "aggregate": a, "name": scenario.aggregate_names.get(a)}
            for p in providers
            for a in p.aggregates
        ],
        "consumers": [
            {"uuid": c.uuid, "project": c.project, "user": c.user, "consumer_type": c.consumer_type}
            for c in consumers
        ],
        "allocations": [
            {"consumer": c.uuid, "provider": rp, "resource_class": rc, "used": amount}
            for c in consumers
            for rp, resources in c.allocations.items()
            for rc, amount in resources.items()
        ],
        "limits": [
            row for q in quota_list for row in quotas.limit_rows(q.project, q.user, q.consumer_type, q.limits)
        ],
    }
