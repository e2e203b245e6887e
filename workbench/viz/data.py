"""What a drawing of the provider trees needs, read from Neo4j.

The trees themselves (lineage, traits, aggregates, used/capacity per class)
come from :func:`workbench.engine.providers.provider_trees`; this module adds
the two facts a drawing needs on top: which providers share their inventory
and which trees they serve, and (optionally) which consumers hold what.

Everything is returned in a fixed order, so the same graph always gives the
same drawing (notebooks are compared output for output under nbval).
"""

from __future__ import annotations

import dataclasses
import functools

from workbench.graphdb.db import Graph
from workbench.engine.providers import provider_trees

SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"

SHARING_LINKS = """
// Sharing providers (those with the trait $sharing_trait) and the trees they
// serve: every *other* tree that has a provider in one of the sharing
// provider's aggregates, named by its root, with the aggregates that connect
// them (Placement's rule: a sharing provider serves its aggregate mates).
MATCH (sharing:Provider)-[:HAS_TRAIT]->(:Trait {name: $sharing_trait})
MATCH (own:Provider)-[:PARENT_OF*0..]->(sharing)
WHERE NOT EXISTS { (own)<-[:PARENT_OF]-() }
RETURN sharing.uuid AS provider,
       COLLECT {
         MATCH (sharing)-[:MEMBER_OF]->(agg:Aggregate)<-[:MEMBER_OF]-(member:Provider)
         MATCH (root:Provider)-[:PARENT_OF*0..]->(member)
         WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() } AND root <> own
         WITH DISTINCT root, agg
         RETURN {root: root.uuid, aggregate: coalesce(agg.name, agg.uuid)}
       } AS serves
ORDER BY provider
"""

CONSUMER_ALLOCATIONS = """
// Every consumer's allocations, one row per (consumer, provider, class).
MATCH (c:Consumer)-[a:CONSUMES]->(inv:Inventory)<-[:HAS_INVENTORY]-(rp:Provider)
RETURN c.uuid AS consumer, c.project_id AS project, c.user_id AS user,
       c.consumer_type AS consumer_type, rp.uuid AS provider,
       inv.resource_class AS resource_class, a.used AS used
ORDER BY consumer, provider, resource_class
"""

REQUEST_VOCABULARY = """
// What a request can name in this graph: the resource classes that have an
// inventory somewhere, every trait, and the aggregates (by name where known).
RETURN COLLECT { MATCH (:Provider)-[:HAS_INVENTORY]->(inv:Inventory)
                 RETURN DISTINCT inv.resource_class AS rc ORDER BY rc } AS resource_classes,
       COLLECT { MATCH (t:Trait) RETURN t.name AS name ORDER BY name } AS traits,
       COLLECT { MATCH (a:Aggregate)
                 RETURN {uuid: a.uuid, name: coalesce(a.name, a.uuid)} AS agg
                 ORDER BY agg.name, agg.uuid } AS aggregates
"""


@dataclasses.dataclass(frozen=True)
class InventoryUse:
    resource_class: str
    used: int
    capacity: int  # int((total - reserved) * allocation_ratio)
    total: int
    reserved: int


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    uuid: str
    name: str
    parent: str | None  # parent uuid
    root: str  # root uuid
    depth: int
    traits: tuple[str, ...]
    aggregates: tuple[str, ...]  # names where the aggregate has one, else uuids
    inventories: tuple[InventoryUse, ...]  # sorted by resource class

    @property
    def sharing(self) -> bool:
        return SHARING_TRAIT in self.traits


@dataclasses.dataclass(frozen=True)
class SharingLink:
    provider: str  # the sharing provider's uuid
    root: str  # the root uuid of a tree it serves
    aggregates: tuple[str, ...]  # the aggregates that connect them


@dataclasses.dataclass(frozen=True)
class ConsumerInfo:
    uuid: str
    project: str
    user: str
    consumer_type: str
    allocations: tuple[tuple[str, str, int], ...]  # (provider uuid, class, used)


@dataclasses.dataclass(frozen=True)
class TreeData:
    """The providers (trees listed top-down, parents first), the sharing links
    and, if asked for, the consumers."""

    providers: tuple[ProviderInfo, ...]
    sharing: tuple[SharingLink, ...]
    consumers: tuple[ConsumerInfo, ...] = ()

    @functools.cached_property
    def by_uuid(self) -> dict[str, ProviderInfo]:
        return {p.uuid: p for p in self.providers}

    @functools.cached_property
    def roots(self) -> list[ProviderInfo]:
        return [p for p in self.providers if p.parent is None]

    @functools.cached_property
    def trees(self) -> dict[str, list[ProviderInfo]]:
        """Root uuid -> the providers of its tree, top-down."""
        trees: dict[str, list[ProviderInfo]] = {}
        for p in self.providers:
            trees.setdefault(p.root, []).append(p)
        return trees


def read_tree_data(graph: Graph, consumers: bool = False) -> TreeData:
    """Read the trees, the sharing links and (if ``consumers``) the consumers."""
    rows = provider_trees(graph)
    uuid_of = {row["name"]: row["uuid"] for row in rows}  # provider names are unique
    providers = tuple(
        ProviderInfo(
            uuid=row["uuid"],
            name=row["name"],
            parent=uuid_of[row["lineage"][-2]] if len(row["lineage"]) > 1 else None,
            root=uuid_of[row["lineage"][0]],
            depth=row["depth"],
            traits=tuple(sorted(row["traits"])),
            aggregates=tuple(sorted(row["aggregates"])),
            inventories=tuple(
                InventoryUse(i["resource_class"], i["used"], i["capacity"], i["total"], i["reserved"])
                for i in sorted(row["inventories"], key=lambda i: i["resource_class"])
            ),
        )
        for row in rows
    )
    links = []
    for row in graph.read(SHARING_LINKS, sharing_trait=SHARING_TRAIT):
        via: dict[str, set[str]] = {}
        for link in row["serves"]:
            via.setdefault(link["root"], set()).add(link["aggregate"])
        links.extend(SharingLink(row["provider"], root, tuple(sorted(aggs))) for root, aggs in sorted(via.items()))
    return TreeData(providers, tuple(links), _read_consumers(graph) if consumers else ())


def _read_consumers(graph: Graph) -> tuple[ConsumerInfo, ...]:
    grouped: dict[str, dict] = {}
    for row in graph.read(CONSUMER_ALLOCATIONS):
        entry = grouped.setdefault(
            row["consumer"],
            {"project": row["project"], "user": row["user"], "type": row["consumer_type"], "allocations": []},
        )
        entry["allocations"].append((row["provider"], row["resource_class"], row["used"]))
    return tuple(
        ConsumerInfo(uuid, e["project"] or "", e["user"] or "", e["type"] or "", tuple(e["allocations"]))
        for uuid, e in sorted(grouped.items())
    )


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The names a request builder offers."""

    resource_classes: tuple[str, ...]
    traits: tuple[str, ...]
    aggregates: tuple[tuple[str, str], ...]  # (name, uuid)


def request_vocabulary(graph: Graph) -> Vocabulary:
    row = graph.read(REQUEST_VOCABULARY)[0]
    return Vocabulary(
        tuple(row["resource_classes"]),
        tuple(row["traits"]),
        tuple((a["name"], a["uuid"]) for a in row["aggregates"]),
    )
