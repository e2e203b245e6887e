"""What the explanations look at: facts read with Cypher, and the engine's own search
stopped before it combines the groups.

The facts (a provider's inventories with their usage, its traits and
aggregates, its root's) come from the named queries below, traced like the
candidate queries so that ``--explain`` shows them. Which providers can serve
which group comes from :class:`Probe`, the engine's own
:class:`~workbench.engine.candidates.CandidateSearch` asked group by group
without stopping at the first group that finds nothing: an explanation must
agree with the answer, so it asks the code that gives the answer.
"""

from __future__ import annotations

import dataclasses

from workbench import catalog
from workbench.graphdb.db import Reader
from workbench.engine.candidates import (
    CandidateSearch,
    NoCandidates,
    PartialRequest,
    QueryTrace,
)
from workbench.engine.errors import BadRequest, NotFound
from workbench.engine.request import CandidateRequest, RequestGroup

FIND_PROVIDER = """
// The provider asked about: by UUID first, else by name.
OPTIONAL MATCH (by_uuid:Provider {uuid: $ref})
OPTIONAL MATCH (by_name:Provider {name: $ref})
RETURN by_uuid.uuid AS by_uuid, by_name.uuid AS by_name
"""

PROVIDER_FACTS = """
// Everything the rules look at, for some providers: each one's root, its
// inventories with what is used of them (the sum of the allocations), its
// traits and aggregates, and its root's traits and aggregates.
UNWIND $uuids AS uuid
MATCH (root:Provider)-[:PARENT_OF*0..]->(rp:Provider {uuid: uuid})
USING INDEX rp:Provider(uuid)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN rp.uuid AS uuid, rp.name AS name, root.uuid AS root, root.name AS root_name,
       COLLECT { MATCH (rp)-[:HAS_TRAIT]->(t:Trait) RETURN t.name } AS traits,
       COLLECT { MATCH (rp)-[:MEMBER_OF]->(a:Aggregate) RETURN a.uuid } AS aggregates,
       COLLECT { MATCH (root)-[:HAS_TRAIT]->(t:Trait) RETURN t.name } AS root_traits,
       COLLECT { MATCH (root)-[:MEMBER_OF]->(a:Aggregate) RETURN a.uuid } AS root_aggregates,
       COLLECT { MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
                 CALL (inv) {
                   OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(:Consumer)
                   RETURN coalesce(sum(allocation.used), 0) AS used
                 }
                 RETURN inv {.resource_class, .total, .reserved, .min_unit, .max_unit, .step_size,
                             .allocation_ratio, used: used}
               } AS inventories
"""

ALL_PROVIDERS = """
// Every provider, by name: to explain each one that no candidate uses.
MATCH (rp:Provider)
WITH rp ORDER BY rp.name
RETURN collect(rp.uuid) AS uuids
"""

CLASS_HOLDERS = """
// The funnel starts from every provider with an inventory of a class the request names.
MATCH (rp:Provider)-[:HAS_INVENTORY]->(inv:Inventory)
WHERE inv.resource_class IN $classes
RETURN collect(DISTINCT rp.uuid) AS uuids
"""

NAMES = """
// Names to print beside UUIDs: providers and aggregates (an aggregate has one
// only if a scenario file gave it).
UNWIND $uuids AS uuid
OPTIONAL MATCH (rp:Provider {uuid: uuid})
OPTIONAL MATCH (agg:Aggregate {uuid: uuid})
RETURN uuid, coalesce(rp.name, agg.name) AS name
"""


@dataclasses.dataclass(frozen=True)
class Inventory:
    resource_class: str
    total: int
    reserved: int
    min_unit: int
    max_unit: int
    step_size: int
    allocation_ratio: float
    used: int

    @property
    def capacity(self) -> int:
        """Placement's capacity: what may be allocated in all."""
        return int((self.total - self.reserved) * self.allocation_ratio)


@dataclasses.dataclass(frozen=True)
class Facts:
    uuid: str
    name: str
    root: str
    root_name: str
    traits: frozenset[str]
    aggregates: frozenset[str]
    root_traits: frozenset[str]
    root_aggregates: frozenset[str]
    inventories: dict[str, Inventory]


class Probe(CandidateSearch):
    """The engine's search on the whole cloud, group by group, plus the facts."""

    queries = {
        **CandidateSearch.queries,
        "find_provider": FIND_PROVIDER,
        "provider_facts": PROVIDER_FACTS,
        "all_providers": ALL_PROVIDERS,
        "class_holders": CLASS_HOLDERS,
        "names": NAMES,
    }

    def __init__(self, reader: Reader, request: CandidateRequest, trace: list[QueryTrace]):
        super().__init__(reader, request, trace)
        self.facts: dict[str, Facts] = {}
        self.names: dict[str, str] = {}
        self.relaxed: dict[tuple[str, str | None], list[PartialRequest]] = {}
        self._check_names()
        world = self._read("world", sharing_trait=catalog.SHARES_VIA_AGGREGATE)[0]
        self.sharing, self.has_trees = set(world["sharing"]), world["has_trees"]
        # Trees that root_required allows (None: all), as the engine's search narrows them.
        self.anchor_roots = None
        if request.root_required or request.root_forbidden:
            self.anchor_roots = {
                r["root"]
                for r in self._read(
                    "roots_with_traits",
                    required=sorted(request.root_required),
                    forbidden=sorted(request.root_forbidden),
                )
            }
        self.tree_roots = {s: self._root_of_tree(g.in_tree) for s, g in request.groups.items() if g.in_tree}
        self.capacity = self._capacity()
        self._sharing_anchors({rp for pairs in self.capacity.values() for rp, _ in pairs})
        self.holders = self._trait_holders()
        self.partials = {suffix: self.group_partials(group) for suffix, group in request.groups.items()}

    def spreads(self, group: RequestGroup) -> bool:
        """Does this group spread over a tree and its sharing providers (as the
        unsuffixed group does once anything is nested or shared)?"""
        return not group.use_same_provider and bool(self.sharing or self.has_trees)

    def group_partials(self, group: RequestGroup) -> list[PartialRequest]:
        """Every way the engine finds to serve ``group`` alone, in any tree."""
        try:
            return self._spread_over_tree(group) if self.spreads(group) else self._single_provider(group)
        except NoCandidates:  # e.g. a member_of no provider is in
            return []

    def relaxed_partials(self, group: RequestGroup, only: str | None = None) -> list[PartialRequest]:
        """The group's answers with its required traits dropped (and, given ``only``, for
        that one class): what tells a class a tree lacks from a trait it lacks.
        Remembered, since every provider explained asks the same."""
        key = (group.suffix, only)
        if key not in self.relaxed:
            resources = {only: group.resources[only]} if only else group.resources
            self.relaxed[key] = self.group_partials(dataclasses.replace(group, resources=resources, required=[]))
        return self.relaxed[key]

    def _capacity(self) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """(suffix, class) -> {(provider, root)} with room, for every group, even
        when some group finds nothing (the engine stops there; an explanation goes on)."""
        requests = [
            {
                "key": f"{suffix}\x00{rc}",
                "resource_class": rc,
                "amount": amount,
                "tree_root": self.tree_roots.get(suffix),
            }
            for suffix, group in self.request.groups.items()
            if not (group.in_tree and self.tree_roots[suffix] is None)  # an unknown in_tree matches nothing
            for rc, amount in group.resources.items()
        ]
        found = {(s, rc): set() for s, g in self.request.groups.items() for rc in g.resources}
        if requests:
            for row in self._read("providers_with_capacity", requests=requests):
                suffix, rc = row["key"].split("\x00")
                for rp, root, used, capacity, max_unit in row["providers"]:
                    found[suffix, rc].add((rp, root))
                    self.root_of[rp] = root
                    self.inventory[rp, rc] = {"used": used, "capacity": capacity, "max_unit": max_unit}
        return found

    # -- facts -----------------------------------------------------------------
    def provider(self, ref: str) -> str:
        """The UUID of the provider named or numbered ``ref``."""
        row = self._read("find_provider", ref=ref)[0]
        if row["by_uuid"] and row["by_name"] and row["by_uuid"] != row["by_name"]:
            raise BadRequest(f"{ref!r} is the UUID of one provider and the name of another: give the other's UUID")
        uuid = row["by_uuid"] or row["by_name"]
        if uuid is None:
            raise NotFound(f"No resource provider with name or UUID {ref!r}.")
        return uuid

    def load_facts(self, uuids) -> dict[str, Facts]:
        missing = sorted(set(uuids) - self.facts.keys())
        if missing:
            for row in self._read("provider_facts", uuids=missing):
                inventories = {i["resource_class"]: Inventory(**i) for i in row.pop("inventories")}
                facts = Facts(**{k: frozenset(v) if isinstance(v, list) else v for k, v in row.items()},
                              inventories=inventories)
                self.facts[facts.uuid] = facts
                self.names[facts.uuid], self.names[facts.root] = facts.name, facts.root_name
        return self.facts

    def all_providers(self) -> list[str]:
        return self._read("all_providers")[0]["uuids"]

    def class_holders(self) -> set[str]:
        classes = sorted(self.request.resource_classes())
        return set(self._read("class_holders", classes=classes)[0]["uuids"])

    def load_names(self, uuids) -> dict[str, str]:
        missing = sorted(set(uuids) - self.names.keys())
        if missing:
            for row in self._read("names", uuids=missing):
                self.names[row["uuid"]] = row["name"] or row["uuid"]
        return self.names
