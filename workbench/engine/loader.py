"""Write a validated scenario into Neo4j, all of it or nothing, even across a crash.

Every statement is a batched ``UNWIND`` over plain parameter lists, so a
10,000-host cloud is a handful of round trips. The providers are written in
transactions of whole trees (up to ``batch`` providers each), then the
consumers (``batch`` per transaction), so no transaction can outgrow the
server's transaction memory; the last transaction adds the custom catalogue
and the quotas, checks the quotas against everything the graph now holds, and
is the load's commit point.

A load is kept in a journal in the graph (:mod:`workbench.engine.journal`):
if it fails, or the loader or the server dies, what it wrote is removed, and
with ``reset`` the previous graph comes back, at once or on the next connect.
A reset retires the previous graph instead of deleting it, and deletes it only
after the commit point.
"""

from __future__ import annotations

import time
from typing import Callable

import neo4j

from workbench.graphdb.db import Graph
from workbench.engine import journal, quotas, usages
from workbench.scenario import Scenario

# Custom catalogue entries: MERGE, so loading twice does not duplicate them.
CREATE_CUSTOM_CATALOGUE = """
UNWIND $classes AS name
MERGE (:ResourceClass {name: name})
WITH count(*) AS done
UNWIND $traits AS name
MERGE (t:Trait {name: name})
ON CREATE SET t._load = $load
SET t.custom = true
"""

CREATE_PROVIDERS = """
UNWIND $providers AS p
CREATE (:Provider {uuid: p.uuid, name: p.name, generation: 0, _load: $load})
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
    allocation_ratio: i.allocation_ratio, used: 0})
"""

# Trait and aggregate nodes are shared: the load marks only those it creates,
# so undoing it removes them and leaves the ones others use.
ADD_TRAITS = """
UNWIND $traits AS pair
MATCH (rp:Provider {uuid: pair.provider})
MERGE (t:Trait {name: pair.trait})
ON CREATE SET t._load = $load
CREATE (rp)-[:HAS_TRAIT]->(t)
"""

ADD_AGGREGATES = """
UNWIND $aggregates AS pair
MATCH (rp:Provider {uuid: pair.provider})
MERGE (a:Aggregate {uuid: pair.aggregate})
ON CREATE SET a.name = pair.name, a._load = $load
CREATE (rp)-[:MEMBER_OF]->(a)
"""

CREATE_CONSUMERS = """
UNWIND $consumers AS c
CREATE (:Consumer {uuid: c.uuid, project_id: c.project, user_id: c.user,
                   consumer_type: c.consumer_type, generation: 1, _load: $load})
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
    """The scenario clashes with what the database already holds, or another load is running."""


# A transaction holds all its changes in memory (bounded by the server's
# dbms.memory.transaction.total.max, 70 % of a 512 MiB heap at the least):
# 10,000 providers with their inventories, or 10,000 consumers with their
# allocations, stay well below it.
PROVIDERS_PER_TRANSACTION = 10000
BATCH = 2000  # rows per UNWIND

Progress = Callable[[str, int, int], None]  # (step, done, of): after each committed transaction


def load(
    graph: Graph,
    scenario: Scenario,
    reset: bool = False,
    batch: int = PROVIDERS_PER_TRANSACTION,
    progress: Progress | None = None,
) -> dict:
    """Load ``scenario``; with ``reset`` it replaces whatever the database held.

    The scenario was validated when it was parsed. Providers go in
    transactions of whole trees of up to ``batch`` providers, consumers
    ``batch`` to a transaction; ``progress(step, done, of)`` is called after
    each (steps: 'retired', 'providers', 'consumers', 'committed'). If
    anything fails the load is undone, and the previous graph is back.
    """
    started = time.perf_counter()
    try:
        with journal.lease(graph):
            transactions = _load_leased(graph, scenario, reset, batch, progress or (lambda step, done, of: None))
    except journal.LoadInProgress as error:
        raise LoadConflict(f"{scenario.source}: {error}") from None
    return {
        "scenario": scenario.name,
        "providers": len(scenario.providers),
        "consumers": len(scenario.consumers),
        "transactions": transactions,
        "seconds": time.perf_counter() - started,
    }


def _load_leased(graph: Graph, scenario: Scenario, reset: bool, batch: int, report: Progress) -> int | None:
    journal.resolve_all(graph)  # what a dead load left, now that nobody else can be loading
    if not reset:
        _refuse_clashes(graph, scenario)
    load_id = journal.begin(graph, str(scenario.source))
    try:
        if reset:
            journal.retire(graph)
            report("retired", 1, 1)
        transactions = _write_all(graph, scenario, load_id, batch, report)
    except BaseException:
        if _resolve_quietly(graph, load_id) != "finished":
            raise
        return None  # the commit went through; only its answer was lost
    journal.resolve(graph, load_id)
    return transactions


def _write_all(graph: Graph, scenario: Scenario, load_id: str, batch: int, report: Progress) -> int:
    """Every transaction of the load, the commit point last; returns how many there were."""
    tree_chunks = list(scenario.tree_chunks(batch))
    consumer_chunks = [scenario.consumers[i : i + batch] for i in range(0, len(scenario.consumers), batch)]
    for i, providers in enumerate(tree_chunks):
        params = _provider_parameters(scenario, providers)
        graph.write(lambda tx, params=params: _run_batches(tx, load_id, params))
        report("providers", i + 1, len(tree_chunks))
    for i, consumers in enumerate(consumer_chunks):
        params = _consumer_parameters(consumers)
        graph.write(lambda tx, params=params: _write_consumers(tx, load_id, params))
        report("consumers", i + 1, len(consumer_chunks))
    graph.write(lambda tx: _commit(tx, scenario, load_id))
    report("committed", 1, 1)
    return len(tree_chunks) + len(consumer_chunks) + 1


def _commit(tx: neo4j.ManagedTransaction, scenario: Scenario, load_id: str) -> None:
    """The last transaction: catalogue, quotas (checked against the whole graph), commit point."""
    tx.run(
        CREATE_CUSTOM_CATALOGUE, classes=scenario.resource_classes, traits=scenario.traits, load=load_id
    ).consume()
    limits = [row for q in scenario.quotas for row in quotas.limit_rows(q.project, q.user, q.consumer_type, q.limits)]
    if limits:
        tx.run(quotas.SET_LIMITS, limits=limits).consume()
    quotas.check_loaded(tx, scenario.consumers, limits, scenario.source)
    journal.commit(tx, load_id)


def _run_batches(tx: neo4j.ManagedTransaction, load_id: str, params: dict[str, list[dict]]) -> None:
    # Each statement UNWINDs the parameter list of the same name.
    for statement, key in (
        (CREATE_PROVIDERS, "providers"),
        (LINK_CHILDREN, "links"),
        (CREATE_INVENTORIES, "inventories"),
        (ADD_TRAITS, "traits"),
        (ADD_AGGREGATES, "aggregates"),
        (CREATE_CONSUMERS, "consumers"),
        (CREATE_ALLOCATIONS, "allocations"),
    ):
        rows = params.get(key, [])
        for start in range(0, len(rows), BATCH):
            tx.run(statement, {key: rows[start : start + BATCH], "load": load_id}).consume()


def _write_consumers(tx: neo4j.ManagedTransaction, load_id: str, params: dict[str, list[dict]]) -> None:
    """Consumers and their allocations, and the usage they add stored on the inventories, in one transaction."""
    _run_batches(tx, load_id, params)
    usages.store_usage(tx, ((a["provider"], a["resource_class"]) for a in params["allocations"]))


def _resolve_quietly(graph: Graph, load_id: str) -> str:
    """Undo (or finish) a failed load now if the server still answers; else the next connect will."""
    try:
        return journal.resolve(graph, load_id)
    except Exception:
        return "left for recovery"


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


def _provider_parameters(scenario: Scenario, providers: list) -> dict[str, list[dict]]:
    """The UNWIND lists for these providers."""
    return {
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
    }


def _consumer_parameters(consumers: list) -> dict[str, list[dict]]:
    """The UNWIND lists for these consumers and their allocations."""
    return {
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
    }
