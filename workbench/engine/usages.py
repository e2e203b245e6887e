"""Usage: what is consumed, per provider (``GET /resource_providers/{uuid}/usages``)
and per project or user (``GET /usages``), with Placement's shapes.

Usage is never stored: it is the sum of the ``CONSUMES`` relationships into
an inventory, read at request time.

``GET /usages`` changed shape at 1.38. Before, one flat map of resource
class to amount. From 1.38 the amounts are grouped by consumer type, each
group with a ``consumer_count`` (distinct consumers, however many classes
each holds); ``consumer_type=all`` puts everything in one group "all", and
``consumer_type=unknown`` selects the consumers that never had a type
(written before 1.38). A consumer without a type is reported as "unknown".
"""

from __future__ import annotations

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
