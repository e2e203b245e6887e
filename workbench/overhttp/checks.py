"""After a claim run: nothing overcommitted, nothing lost, on one service, through its API and in its store.

Through the API (what any client sees): for every provider, its inventories, usages and allocations;
for every boot, ``GET /allocations/{consumer}``. In the store (what is really there): Cypher on Neo4j for
the graph, SQL on PostgreSQL for the real Placement. Each check is a list of violations (the first few
shown, all counted), never an exception: a violation is reported plainly, whichever service it is on.

* **over capacity**: usage > (total - reserved) * allocation_ratio for some inventory (Placement's
  capacity rule, ``placement/objects/allocation.py``);
* **usage != sum of allocations** (API only: both stores keep no usage apart from the allocations);
* **lost**: a boot answered 2xx whose allocations are not stored exactly as claimed;
* **phantom**: a boot never answered 2xx with allocations stored under its consumer.
"""

from __future__ import annotations

from collections import defaultdict

SHOWN = 10  # violations listed per check; the rest only counted

# Every inventory with the sum of what is allocated from it (0 when nothing is).
GRAPH_INVENTORY_USAGE = """
MATCH (p:Provider)-[:HAS_INVENTORY]->(i:Inventory)
OPTIONAL MATCH (:Consumer)-[c:CONSUMES]->(i)
RETURN p.uuid AS provider, i.resource_class AS resource_class, i.total AS total, i.reserved AS reserved,
       i.allocation_ratio AS allocation_ratio, sum(coalesce(c.used, 0)) AS used
"""
# Every allocation: (consumer, provider, class, amount).
GRAPH_ALLOCATIONS = """
MATCH (c:Consumer)-[a:CONSUMES]->(i:Inventory)<-[:HAS_INVENTORY]-(p:Provider)
RETURN c.uuid AS consumer, p.uuid AS provider, i.resource_class AS resource_class, a.used AS used
"""
# The same two questions of Placement's schema (placement/db/sqlalchemy/models.py): allocations hold the
# consumer's UUID; standard and custom classes alike are rows of resource_classes.
SQL_INVENTORY_USAGE = """
SELECT rp.uuid AS provider, rc.name AS resource_class, inv.total, inv.reserved, inv.allocation_ratio,
       COALESCE((SELECT SUM(a.used) FROM allocations a
                 WHERE a.resource_provider_id = inv.resource_provider_id
                   AND a.resource_class_id = inv.resource_class_id), 0) AS used
FROM inventories inv
JOIN resource_providers rp ON rp.id = inv.resource_provider_id
JOIN resource_classes rc ON rc.id = inv.resource_class_id
"""
SQL_ALLOCATIONS = """
SELECT a.consumer_id AS consumer, rp.uuid AS provider, rc.name AS resource_class, a.used
FROM allocations a
JOIN resource_providers rp ON rp.id = a.resource_provider_id
JOIN resource_classes rc ON rc.id = a.resource_class_id
"""


def _listed(problems: list[str]) -> dict:
    return {"count": len(problems), "shown": problems[:SHOWN]}


def _over_capacity(rows) -> list[str]:
    return [
        f"{r['provider']} {r['resource_class']}: used {r['used']} > ({r['total']} - {r['reserved']}) * "
        f"{r['allocation_ratio']}"
        for r in rows if r["used"] > (r["total"] - r["reserved"]) * r["allocation_ratio"]
    ]


def _claims(boots: list[dict], stored: dict[str, dict]) -> tuple[list[str], list[str]]:
    """(lost, phantom): 2xx boots not stored exactly as claimed; failed boots with something stored."""
    lost, phantom = [], []
    for b in boots:
        if not b.get("consumer"):
            continue
        have = stored.get(b["consumer"]) or {}
        if b["outcome"] == "claimed" and have != b["allocations"]:
            lost.append(f"{b['consumer']}: claimed {b['allocations']}, stored {have or 'nothing'}")
        elif b["outcome"] != "claimed" and have:
            phantom.append(f"{b['consumer']} ({b['outcome']}): stored {have}")
    return lost, phantom


def through_api(client, providers: list[str], boots: list[dict]) -> dict:
    inventory_rows, usage_mismatch = [], []
    for rp in providers:
        inventories = client.check("GET", f"/resource_providers/{rp}/inventories")["inventories"]
        usages = client.check("GET", f"/resource_providers/{rp}/usages")["usages"]
        allocated: dict[str, int] = defaultdict(int)
        for consumer in client.check("GET", f"/resource_providers/{rp}/allocations")["allocations"].values():
            for rc, amount in consumer["resources"].items():
                allocated[rc] += amount
        for rc, inv in inventories.items():
            inventory_rows.append({"provider": rp, "resource_class": rc, "used": usages.get(rc, 0), **inv})
        if {rc: n for rc, n in usages.items() if n} != dict(allocated):
            usage_mismatch.append(f"{rp}: usages {usages}, sum of allocations {dict(allocated)}")
    stored = {}
    for b in boots:
        if b.get("consumer"):
            answer = client.check("GET", f"/allocations/{b['consumer']}")["allocations"]
            stored[b["consumer"]] = {rp: dict(a["resources"]) for rp, a in answer.items()}
    lost, phantom = _claims(boots, stored)
    return {"over_capacity": _listed(_over_capacity(inventory_rows)), "usage_not_sum": _listed(usage_mismatch),
            "lost": _listed(lost), "phantom": _listed(phantom)}


def _by_consumer(rows) -> dict[str, dict]:
    stored: dict[str, dict] = defaultdict(dict)
    for r in rows:
        stored[r["consumer"]].setdefault(r["provider"], {})[r["resource_class"]] = r["used"]
    return stored


def in_graph(graph, boots: list[dict]) -> dict:
    lost, phantom = _claims(boots, _by_consumer(graph.read(GRAPH_ALLOCATIONS)))
    return {"over_capacity": _listed(_over_capacity(graph.read(GRAPH_INVENTORY_USAGE))),
            "lost": _listed(lost), "phantom": _listed(phantom)}


def in_sql(engine, boots: list[dict]) -> dict:
    import sqlalchemy

    with engine.connect() as connection:
        usage = [dict(r._mapping) for r in connection.execute(sqlalchemy.text(SQL_INVENTORY_USAGE))]
        allocations = [dict(r._mapping) for r in connection.execute(sqlalchemy.text(SQL_ALLOCATIONS))]
    lost, phantom = _claims(boots, _by_consumer(allocations))
    return {"over_capacity": _listed(_over_capacity(usage)), "lost": _listed(lost), "phantom": _listed(phantom)}


def verify(served, providers: list[str], boots: list[dict]) -> dict:
    """Every check on ``served`` (a :class:`~workbench.overhttp.stack.Served`), through its API and in
    its store; ``ok`` is True only when every list is empty."""
    client = served.client()
    try:
        api = through_api(client, providers, boots)
    finally:
        client.close()
    store = in_graph(served.store, boots) if served.name == "graph" else in_sql(served.store, boots)
    ok = all(check["count"] == 0 for checks in (api, store) for check in checks.values())
    return {"ok": ok, "api": api, "store": store}
