"""Usage: what is consumed, per provider (``GET /resource_providers/{uuid}/usages``)
and per project or user (``GET /usages``), with Placement's shapes.

Usage is the sum of the ``CONSUMES`` relationships into an inventory. The
answers here sum them at request time. The candidate search, asked far more
often, reads a copy kept on the inventory (``inv.used``; on a full cloud the
sum was a third of its work): every writer of allocations calls
:func:`store_usage` in its own transaction, after its change, so in every
committed state the copy is the sum. Graphs written before the copy existed
get it on connect (:func:`store_missing_usage`).

``GET /usages`` changed shape at 1.38. Before, one flat map of resource
class to amount. From 1.38 the amounts are grouped by consumer type, each
group with a ``consumer_count`` (distinct consumers, however many classes
each holds); ``consumer_type=all`` puts everything in one group "all", and
``consumer_type=unknown`` selects the consumers that never had a type
(written before 1.38). A consumer without a type is reported as "unknown".
"""

from __future__ import annotations

from typing import Iterable

import neo4j

from workbench.graphdb.db import Graph
from workbench.engine.errors import NotFound
from workbench.engine.providers import _path_uuid

# Placement's name for consumers that have no consumer type.
UNKNOWN = "unknown"
ALL = "all"

PROVIDER_USAGES = """
// One row per inventory of the provider, with the amount allocated from it
// (0 when nothing is); a provider without inventories gives one row of nulls.
MATCH (rp:Provider {uuid: $uuid})
OPTIONAL MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
RETURN rp.generation AS generation, inv.resource_class AS resource_class,
       reduce(used = 0, a IN [(inv)<-[c:CONSUMES]-(:Consumer) | c.used] | used + a) AS used
"""

PROJECT_USAGES = """
// What a project's consumers (optionally one user's) hold, per consumer type
// and resource class, and which consumers hold it (to count them once each).
MATCH (c:Consumer {project_id: $project})-[a:CONSUMES]->(inv:Inventory)
WHERE $user IS NULL OR c.user_id = $user
RETURN coalesce(c.consumer_type, $unknown) AS consumer_type, inv.resource_class AS resource_class,
       sum(a.used) AS used, collect(DISTINCT c.uuid) AS consumers
"""


# The stored copy, for the inventory bound to `inv`. Its write lock is taken
# first (a scratch property, as providers.LOCK_PROVIDERS does) and the sum
# read after it, in a later clause: a writer racing on the same inventory
# waits for the lock, and then sums what the first one committed. (Summing in
# the SET itself would read before the lock, and the last writer could store
# a stale sum.)
_STORE = """
SET inv._lock = true
REMOVE inv._lock
WITH inv
SET inv.used = reduce(used = 0, a IN [(inv)<-[c:CONSUMES]-(:Consumer) | c.used] | used + a)"""

STORE_USAGE = (
    """
UNWIND $inventories AS key
MATCH (rp:Provider {uuid: key.provider})-[:HAS_INVENTORY]->(inv:Inventory {resource_class: key.resource_class})
USING INDEX SEEK rp:Provider(uuid)"""
    + _STORE
)

STORE_MISSING_USAGE = (
    """
// Inventories without the stored copy (written before it existed). CALL ...
// IN TRANSACTIONS needs an auto-commit transaction.
MATCH (inv:Inventory) WHERE inv.used IS NULL
CALL (inv) {"""
    + _STORE
    + """
} IN TRANSACTIONS OF 10000 ROWS
"""
)

ANY_MISSING_USAGE = "RETURN EXISTS { MATCH (inv:Inventory) WHERE inv.used IS NULL } AS missing"


def store_usage(tx: neo4j.ManagedTransaction, inventories: Iterable[tuple[str, str]]) -> None:
    """Store the usage of these (provider uuid, resource class) inventories: call it
    in the transaction that changed their allocations, after the change."""
    # In one order for every writer, so that two never wait on each other crosswise.
    keys = [{"provider": rp, "resource_class": rc} for rp, rc in sorted(set(inventories))]
    if keys:
        tx.run(STORE_USAGE, inventories=keys).consume()


def store_missing_usage(graph: Graph) -> None:
    """Give every inventory that lacks it the stored usage (graphs written before it was stored)."""
    if graph.read(ANY_MISSING_USAGE)[0]["missing"]:
        with graph.driver.session(database=graph.database) as session:
            session.run(STORE_MISSING_USAGE).consume()


def provider_usages(graph: Graph, uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/usages``: ``{"resource_provider_generation", "usages": {rc: n}}``.

    Every class the provider has inventory of is listed, unused ones with 0.
    """
    rows = graph.read(PROVIDER_USAGES, uuid=_path_uuid(uuid))
    if not rows:
        raise NotFound(
            f"No resource provider with uuid {uuid} found: No resource provider with uuid {uuid} found"
        )
    return {
        "resource_provider_generation": rows[0]["generation"],
        "usages": {r["resource_class"]: r["used"] for r in rows if r["resource_class"] is not None},
    }


def total_usages(graph: Graph, project: str, user: str | None = None) -> dict:
    """``GET /usages`` before 1.38: ``{"usages": {rc: n}}`` over all consumer types."""
    totals: dict[str, int] = {}
    for row in _rows(graph, project, user):
        totals[row["resource_class"]] = totals.get(row["resource_class"], 0) + row["used"]
    return {"usages": totals}


def usages_by_consumer_type(
    graph: Graph, project: str, user: str | None = None, consumer_type: str | None = None
) -> dict:
    """``GET /usages`` from 1.38: ``{"usages": {type: {rc: n, ..., "consumer_count": k}}}``.

    ``consumer_type`` None gives every type its own group; "all" one group
    "all" for everything; "unknown" or a type name only that group.
    """
    groups: dict[str, dict] = {}
    holders: dict[str, set[str]] = {}
    for row in _rows(graph, project, user):
        if consumer_type not in (None, ALL) and row["consumer_type"] != consumer_type:
            continue
        group = ALL if consumer_type == ALL else row["consumer_type"]
        amounts = groups.setdefault(group, {})
        amounts[row["resource_class"]] = amounts.get(row["resource_class"], 0) + row["used"]
        holders.setdefault(group, set()).update(row["consumers"])
    for group, consumers in holders.items():
        groups[group]["consumer_count"] = len(consumers)
    return {"usages": groups}


def _rows(graph: Graph, project: str, user: str | None) -> list[dict]:
    return graph.read(PROJECT_USAGES, project=project, user=user, unknown=UNKNOWN)
