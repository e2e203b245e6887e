"""Reading provider trees back out of the graph, for people."""

from __future__ import annotations

from workbench.db import Graph

PROVIDER_TREES = """
// Every provider under its root, with the path of names from the root down:
// sorting by that path lists each tree top-down, parents before children.
MATCH path = (root:Provider)-[:PARENT_OF*0..]->(rp:Provider)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN [p IN nodes(path) | p.name] AS lineage, rp.uuid AS uuid, rp.name AS name,
       rp.generation AS generation,
       COLLECT { MATCH (rp)-[:HAS_TRAIT]->(t:Trait) RETURN t.name ORDER BY t.name } AS traits,
       COLLECT { MATCH (rp)-[:MEMBER_OF]->(a:Aggregate) RETURN coalesce(a.name, a.uuid) } AS aggregates,
       COLLECT { MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
                 CALL (inv) {
                   OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(:Consumer)
                   RETURN coalesce(sum(allocation.used), 0) AS used
                 }
                 RETURN {resource_class: inv.resource_class, used: used, total: inv.total,
                         reserved: inv.reserved,
                         capacity: toInteger((inv.total - inv.reserved) * inv.allocation_ratio)}
                 ORDER BY inv.resource_class
               } AS inventories
ORDER BY lineage
"""


def provider_trees(graph: Graph) -> list[dict]:
    """One row per provider, trees listed top-down; ``depth`` 0 is a root."""
    rows = graph.read(PROVIDER_TREES)
    for row in rows:
        row["depth"] = len(row["lineage"]) - 1
        row["root"] = row["lineage"][0]
    return rows


def format_trees(rows: list[dict]) -> str:
    """The trees as indented text: name, then used/capacity per class, traits, aggregates."""
    if not rows:
        return "(no resource providers; load a scenario with `workbench load FILE`)"
    lines = []
    for row in rows:
        usage = ", ".join(f"{i['resource_class']} {i['used']}/{i['capacity']}" for i in row["inventories"])
        extras = []
        if row["traits"]:
            extras.append("traits: " + ", ".join(row["traits"]))
        if row["aggregates"]:
            extras.append("aggregates: " + ", ".join(sorted(row["aggregates"])))
        indent = "  " * row["depth"]
        lines.append(f"{indent}{row['name']}" + (f"  [{usage}]" if usage else ""))
        lines.extend(f"{indent}    {extra}" for extra in extras)
    return "\n".join(lines)
