"""Allocation candidates: which providers can satisfy a request?

The work splits the way the problem does:

* **Cypher selects.** Capacity arithmetic, walking a tree up to its root,
  finding the trees a sharing provider serves through its aggregates, and
  reading whole trees for the summaries are graph questions; each is one
  named, parameterised query below, recorded in a trace that
  :func:`explain` shows to the learner.
* **Python combines.** Each request group yields partial answers per tree
  ("anchor"); the combining step takes their product per tree and applies
  ``group_policy``, ``same_subtree``, the combined-capacity check and
  ``limit``. The product is pruned as it is built (an over-full provider or a
  provider reused under ``isolate`` stops a branch), and it stops at
  ``limit``, so wide trees cannot explode (Placement bugs 2070257, 2126751).
* **Only the trees needed are read.** With ``limit`` the trees are searched
  a page at a time, in UUID order, until enough candidates are found, so the
  work follows the limit rather than the cloud (Placement builds every
  candidate, then cuts); a page leaves out the trees with no room, so a
  cloud whose first trees are full costs a glance at each of them, not a
  search. When the unsuffixed group names ``in_tree``, only that tree is
  searched.
* **Usage is read, not summed.** Each inventory carries its usage, stored by
  every writer of allocations in the same transaction
  (:mod:`workbench.engine.usages`); the capacity queries test it before they
  look for the provider's root, so full inventories cost one look.

Queries that start from a list of UUIDs (or classes) say ``USING INDEX
SEEK``: a lookup per UUID is always right, and without the hint the planner,
guessing the list's length, sometimes chose to scan the whole index once per
UUID instead (10,000 roots: 11 s instead of 0.3 s). A plain ``USING INDEX``
is not enough: a scan of the index satisfies it too, and a plan made while
the graph was small (a fresh load, a small cloud) did just that.

Semantics follow Placement 1.39 (placement/objects/allocation_candidate.py and
research_context.py), with one deliberate exception, recorded as a divergence:
Placement collapses identical unsuffixed-group answers served by a sharing
provider to *one* arbitrary tree, so with granular groups it drops every other
tree's candidates. Here every tree keeps its own (see docs/divergences.md).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import itertools
import time
from typing import Any, Callable, Iterator

from workbench import catalog
from workbench.graphdb.db import Graph, Reader
from workbench.engine.errors import BadRequest
from workbench.engine.request import CandidateRequest, RequestGroup, parse

# -- the Cypher -----------------------------------------------------------------

KNOWN_NAMES = """
// Custom resource classes and traits exist only once created; standard ones
// come from os-resource-classes / os-traits.
RETURN COLLECT { MATCH (rc:ResourceClass) RETURN rc.name } AS classes,
       COLLECT { MATCH (t:Trait) RETURN t.name } AS traits
"""

WORLD = """
// Two facts that pick the code path, as in Placement: is anything nested,
// and which providers share their inventory through aggregates?
RETURN EXISTS { MATCH ()-[:PARENT_OF]->() } AS has_trees,
       COLLECT { MATCH (rp:Provider)-[:HAS_TRAIT]->(:Trait {name: $sharing_trait})
                 RETURN rp.uuid } AS sharing
"""

# Which inventories have room for a request: the amount fits the inventory's
# min_unit, max_unit and step_size, and its usage plus the amount fits its
# capacity, (total - reserved) * allocation_ratio. The usage is the copy every
# writer of allocations stores on the inventory (workbench.engine.usages):
# summing the allocations here, on every search, was a third of its work.
_HAS_ROOM = """inv.min_unit <= req.amount <= inv.max_unit
  AND req.amount % inv.step_size = 0
  AND inv.used + req.amount <= (inv.total - inv.reserved) * inv.allocation_ratio
  AND (req.tree_root IS NULL OR root.uuid = req.tree_root)"""

# One row per requested class, the providers as a list: thousands of small
# records cost far more to send and decode than one list.
_PROVIDERS_BY_KEY = """
RETURN req.key AS key,
       collect([rp.uuid, root.uuid, inv.used, toInteger((inv.total - inv.reserved) * inv.allocation_ratio),
                inv.max_unit]) AS providers
"""

PROVIDERS_WITH_CAPACITY = (
    """
// Providers that can give `amount` of one resource class by themselves, and
// the root of each one's tree (the ancestor, or the provider itself, with no
// parent). The whole cloud: start from the inventories of the class, and
// find the provider and its root only for those with room.
UNWIND $requests AS req
MATCH (inv:Inventory {resource_class: req.resource_class})
USING INDEX SEEK inv:Inventory(resource_class)
MATCH (root:Provider)-[:PARENT_OF*0..]->(rp:Provider)-[:HAS_INVENTORY]->(inv)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
  AND """
    + _HAS_ROOM
    + _PROVIDERS_BY_KEY
)

PROVIDERS_IN_TREES_WITH_CAPACITY = (
    """
// The same question for some trees only (a page of trees, or the in_tree
// target): start from their roots and walk down, so the cost follows the
// trees asked about, not the size of the cloud. Sharing providers are asked
// about wherever they are, since they may serve these trees. The trees are
// walked once, for all the requests.
CALL () {
  UNWIND $roots AS root_uuid
  MATCH (root:Provider {uuid: root_uuid})-[:PARENT_OF*0..]->(rp:Provider)-[:HAS_INVENTORY]->(inv:Inventory)
  USING INDEX SEEK root:Provider(uuid)
  RETURN root, rp, inv
  UNION
  UNWIND $sharing AS sharing_uuid
  MATCH (root:Provider)-[:PARENT_OF*0..]->(rp:Provider {uuid: sharing_uuid})-[:HAS_INVENTORY]->(inv:Inventory)
  USING INDEX SEEK rp:Provider(uuid)
  WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
  RETURN root, rp, inv
}
UNWIND $requests AS req
WITH req, root, rp, inv
WHERE inv.resource_class = req.resource_class
  AND """
    + _HAS_ROOM
    + _PROVIDERS_BY_KEY
)

ROOT_PAGE = """
// With a limit, trees are searched a page at a time, in UUID order, until
// enough candidates are found. The unique index on :Provider(uuid) hands
// them over in order, so a page costs its size, not the cloud's.
MATCH (root:Provider)
WHERE root.uuid > $after AND NOT EXISTS { (root)<-[:PARENT_OF]-() }
WITH root ORDER BY root.uuid LIMIT $size
RETURN collect(root.uuid) AS roots
"""

ROOT_PAGE_WITH_ROOM = (
    """
// ROOT_PAGE without the trees that have no room: a tree is on the page only
// if, for each class each group asks for, a provider of the tree has room for
// the group's amount. On a cloud whose first trees are full, a page then
// costs a look at each full tree's inventories, not a search of it, and the
// trees are still taken in UUID order, lazily, until the page is full.
// (Asked only when no provider shares: a sharing provider can give a tree
// what it lacks.)
MATCH (root:Provider)
WHERE root.uuid > $after AND NOT EXISTS { (root)<-[:PARENT_OF]-() }
  AND ALL(req IN $requests WHERE EXISTS {
        MATCH (root)-[:PARENT_OF*0..]->(:Provider)
              -[:HAS_INVENTORY]->(inv:Inventory {resource_class: req.resource_class})
        WHERE """
    + _HAS_ROOM
    + """ })
WITH root ORDER BY root.uuid LIMIT $size
RETURN collect(root.uuid) AS roots
"""
)

SHARING_ANCHORS = """
// The trees a sharing provider serves: every tree with a provider in one of
// its aggregates (its own tree included, since it is in its own aggregates).
UNWIND $sharing AS sharing_uuid
MATCH (sharing:Provider {uuid: sharing_uuid})-[:MEMBER_OF]->(:Aggregate)<-[:MEMBER_OF]-(member:Provider)
USING INDEX SEEK sharing:Provider(uuid)
MATCH (anchor:Provider)-[:PARENT_OF*0..]->(member)
WHERE NOT EXISTS { (anchor)<-[:PARENT_OF]-() }
RETURN sharing.uuid AS provider, collect(DISTINCT anchor.uuid) AS anchors
"""

ROOTS_OF = """
// The root of each given provider's tree: the ancestor (or itself) with no parent.
UNWIND $uuids AS uuid
MATCH (root:Provider)-[:PARENT_OF*0..]->(rp:Provider {uuid: uuid})
USING INDEX SEEK rp:Provider(uuid)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN rp.uuid AS provider, root.uuid AS root
"""

ROOTS_WITH_TRAITS = """
// root_required: roots with every required trait and none of the forbidden ones.
MATCH (root:Provider)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
  AND ALL(name IN $required WHERE EXISTS { (root)-[:HAS_TRAIT]->(:Trait {name: name}) })
  AND NONE(name IN $forbidden WHERE EXISTS { (root)-[:HAS_TRAIT]->(:Trait {name: name}) })
RETURN root.uuid AS root
"""

PROVIDERS_IN_AGGREGATES = """
// member_of: providers in at least one aggregate of every list (AND of ORs).
MATCH (rp:Provider)
WHERE ALL(any_of IN $member_of WHERE EXISTS {
        MATCH (rp)-[:MEMBER_OF]->(agg:Aggregate) WHERE agg.uuid IN any_of })
RETURN rp.uuid AS provider
"""

PROVIDERS_WITH_TRAITS = """
// A resourceless group (named in same_subtree) asks for providers by traits alone.
MATCH (rp:Provider)
WHERE ALL(any_of IN $required WHERE EXISTS {
        MATCH (rp)-[:HAS_TRAIT]->(trait:Trait) WHERE trait.name IN any_of })
MATCH (root:Provider)-[:PARENT_OF*0..]->(rp)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN rp.uuid AS provider, root.uuid AS root
"""

TRAIT_HOLDERS = """
// For each trait the request names: the providers that have it.
MATCH (rp:Provider)-[:HAS_TRAIT]->(trait:Trait)
WHERE trait.name IN $names
RETURN trait.name AS trait, collect(rp.uuid) AS providers
"""

LINEAGES = """
// same_subtree: each provider's ancestors, from the root down to itself.
// One row, the lineages as a list: thousands of small records cost far more
// to send and decode than one list.
UNWIND $uuids AS uuid
MATCH path = (root:Provider)-[:PARENT_OF*0..]->(rp:Provider {uuid: uuid})
USING INDEX SEEK rp:Provider(uuid)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN collect([p IN nodes(path) | p.uuid]) AS lineages
"""

TREES = """
// The provider summaries: every provider of the trees the answer uses, with
// its parent, traits and, per resource class, capacity and usage. One row,
// the providers as lists (cheaper to send than a record each).
UNWIND $roots AS root_uuid
MATCH (root:Provider {uuid: root_uuid})-[:PARENT_OF*0..]->(rp:Provider)
USING INDEX SEEK root:Provider(uuid)
OPTIONAL MATCH (parent:Provider)-[:PARENT_OF]->(rp)
WITH root, rp, parent,
     COLLECT { MATCH (rp)-[:HAS_TRAIT]->(t:Trait) RETURN t.name } AS traits,
     COLLECT { MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
               RETURN [inv.resource_class, toInteger((inv.total - inv.reserved) * inv.allocation_ratio), inv.used]
             } AS inventories
RETURN collect([rp.uuid, parent.uuid, root.uuid, traits, inventories]) AS providers
"""


# The search asks its questions by name; a store answers each in its own query
# language with rows of the same shape (workbench.comparison.sql_store answers
# them in SQL over Placement's own schema).
CYPHER = {
    "known_names": KNOWN_NAMES,
    "world": WORLD,
    "providers_with_capacity": PROVIDERS_WITH_CAPACITY,
    "providers_in_trees_with_capacity": PROVIDERS_IN_TREES_WITH_CAPACITY,
    "root_page": ROOT_PAGE,
    "root_page_with_room": ROOT_PAGE_WITH_ROOM,
    "sharing_anchors": SHARING_ANCHORS,
    "roots_of": ROOTS_OF,
    "roots_with_traits": ROOTS_WITH_TRAITS,
    "providers_in_aggregates": PROVIDERS_IN_AGGREGATES,
    "providers_with_traits": PROVIDERS_WITH_TRAITS,
    "trait_holders": TRAIT_HOLDERS,
    "lineages": LINEAGES,
    "trees": TREES,
}


# -- the data the combining step works on ---------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PartialRequest:
    """One way to satisfy one request group within the tree of ``anchor``."""

    anchor: str
    suffix: str
    resources: tuple[tuple[str, str, int], ...]  # (provider, class, amount)
    providers: frozenset[str]


@dataclasses.dataclass
class QueryTrace:
    name: str
    text: str  # the query as sent (Cypher, or SQL for the SQL store)
    parameters: dict
    rows: int
    milliseconds: float


# Roots in the first page of a search with a limit, if the limit is smaller.
# A page skips the trees without room (but with sharing providers), so
# nearly each tree on it gives a candidate: a first page the size of the
# limit is nearly always the last.
FIRST_PAGE = 10
# Partial requests one search may try beyond those in the candidates it finds
# (a few seconds of work): combining many groups is exponential at worst.
SEARCH_STEPS = 1_000_000
SEARCH_TOO_LARGE = "workbench.search.too_large"


class NoCandidates(Exception):
    """Some group cannot be satisfied at all: the answer is empty (not an error)."""


def find(graph: Graph, query: str | CandidateRequest, trace: list[QueryTrace] | None = None) -> dict:
    """The ``GET /allocation_candidates`` response body (microversion 1.39) for ``query``."""
    request = parse(query) if isinstance(query, str) else query

    def search(reader: Reader) -> dict:
        if trace is not None:
            trace.clear()  # a retried transaction starts the trace again
        return CandidateSearch(reader, request, trace).run()

    # One read transaction for all the queries of one search.
    with _cycle_collector_paused():
        return graph.reading(search)


@contextlib.contextmanager
def _cycle_collector_paused():
    """A search builds hundreds of thousands of small lists, tuples and dicts,
    none of them in a reference cycle; Python's cycle collector would scan
    them again and again as they pile up (on 20,000 NUMA candidates, about
    a quarter of the time). Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def explain(graph: Graph, query: str) -> list[QueryTrace]:
    """The Cypher queries (with parameters) that answering ``query`` runs."""
    trace: list[QueryTrace] = []
    find(graph, query, trace)
    return trace


class CandidateSearch:
    """One search. ``reader.read(text, **parameters)`` runs one of ``queries``
    (name -> query text) inside the search's one read transaction."""

    queries: dict[str, str] = CYPHER

    def __init__(self, reader: Reader, request: CandidateRequest, trace: list[QueryTrace] | None = None):
        self.reader, self.request, self.trace = reader, request, trace
        self.root_of: dict[str, str] = {}  # provider -> the root of its own tree
        self.inventory: dict[tuple[str, str], dict] = {}  # (provider, class) -> capacity, used, max_unit
        self.anchors: dict[str, set[str]] = {}  # sharing provider -> roots of the trees it serves
        self.lineage: dict[str, list[str]] = {}  # provider -> root ... provider
        self.cache: dict[tuple, Any] = {}  # whole-cloud answers, read and shaped once per request
        self.shared_only_seen: set[tuple] = set()
        self.steps_left = SEARCH_STEPS  # see _fitting_products

    def _read(self, name: str, **parameters) -> list[dict]:
        text = self.queries[name]
        started = time.perf_counter()
        rows = self.reader.read(text, **parameters)
        if self.trace is not None:
            elapsed = (time.perf_counter() - started) * 1000
            self.trace.append(QueryTrace(name, text.strip(), parameters, len(rows), elapsed))
        return rows

    def _read_once(self, name: str, into: Callable[[list[dict]], Any], **parameters) -> Any:
        """``into(_read(...))``, remembered: searching page by page needs these
        whole-cloud answers again, and shaping them is as costly as reading."""
        key = (name, repr(sorted(parameters.items())))
        if key not in self.cache:
            self.cache[key] = into(self._read(name, **parameters))
        return self.cache[key]

    # -- the steps ---------------------------------------------------------------
    def run(self) -> dict:
        self._check_names()
        world = self._read("world", sharing_trait=catalog.SHARES_VIA_AGGREGATE)[0]
        self.sharing = set(world["sharing"])
        self.has_trees = world["has_trees"]
        limit = self.request.limit
        target = self._in_tree_target()
        # Which trees to search: all at once, the in_tree target's only, or with
        # a limit page by page (Placement builds every candidate, then cuts).
        scopes = [target] if target is not None or not limit else self._root_pages(limit)
        allocation_requests: list[dict] = []
        for scope in scopes:
            allocation_requests += self._candidates(scope, limit and limit - len(allocation_requests))
            if limit and len(allocation_requests) >= limit:
                break
        return {
            "allocation_requests": allocation_requests,
            "provider_summaries": self._summaries(allocation_requests),
        }

    def _candidates(self, scope: set[str] | None, limit: int | None) -> list[dict]:
        """Allocation requests anchored in the trees of ``scope`` (None: every tree)."""
        try:
            partials = self._search_groups(scope)
        except NoCandidates:
            return []
        return self._combine(partials, limit)

    def _in_tree_target(self) -> set[str] | None:
        """When the unsuffixed group names in_tree, every candidate lies in that
        one tree (the group takes no sharing provider from outside it), so
        only that tree needs searching."""
        group = self.request.groups.get("")
        if group is None or not group.in_tree or not group.resources:
            return None
        root = self._root_of_tree(group.in_tree)
        return {root} if root else set()

    def _root_of_tree(self, uuid: str) -> str | None:
        return self._read_once("roots_of", _first_root, uuids=[uuid])

    def _root_pages(self, limit: int) -> Iterator[set[str]]:
        """Pages of roots in UUID order, each four times the last, so a full
        cloud still takes only a few pages. Without sharing providers a page
        holds only trees with room for every group."""
        room = None
        if not self.sharing:
            try:
                room = self._capacity_requests()
            except NoCandidates:
                return
        after, size = "", max(FIRST_PAGE, limit)
        while True:
            if room is None:
                roots = self._read("root_page", after=after, size=size)[0]["roots"]
            else:
                roots = self._read("root_page_with_room", after=after, size=size, requests=room)[0]["roots"]
            if roots:
                yield set(roots)
            if len(roots) < size:
                return
            after, size = roots[-1], size * 4

    def _check_names(self) -> None:
        known = self._read("known_names")[0]
        classes = catalog.standard_resource_classes() | set(known["classes"])
        for rc in sorted(self.request.resource_classes()):
            if rc not in classes:
                raise BadRequest(f"Invalid resource class in resources parameter: No such resource class {rc}.")
        traits = catalog.standard_traits() | set(known["traits"])
        if unknown := sorted(self.request.trait_names() - traits):
            raise BadRequest(f"No such trait(s): {', '.join(unknown)}.")

    def _search_groups(self, scope: set[str] | None) -> dict[str, list[PartialRequest]]:
        request = self.request
        self.anchor_roots = scope  # the trees candidates may come from; None: all
        if request.root_required or request.root_forbidden:
            allowed = self._read_once(
                "roots_with_traits",
                _roots,
                required=sorted(request.root_required),
                forbidden=sorted(request.root_forbidden),
            )
            self.anchor_roots = allowed if scope is None else scope & allowed
        if self.anchor_roots is not None and not self.anchor_roots:
            raise NoCandidates
        self.capacity = self._providers_with_capacity(scope)
        self._sharing_anchors({rp for pairs in self.capacity.values() for rp, _ in pairs})
        self.holders = self._trait_holders()
        partials = {}
        for suffix, group in request.groups.items():
            if group.use_same_provider or not (self.sharing or self.has_trees):
                found = self._single_provider(group)
            else:
                found = self._spread_over_tree(group)
            if not found:
                raise NoCandidates
            partials[suffix] = found
        return partials

    def _capacity_requests(self) -> list[dict]:
        """What the capacity queries ask: per group and class, the amount, and the
        root of the group's in_tree (None: any tree)."""
        requests = []
        for suffix, group in self.request.groups.items():
            tree_root = None
            if group.in_tree:
                tree_root = self._root_of_tree(group.in_tree)
                if tree_root is None:
                    raise NoCandidates  # Placement: an unknown in_tree provider matches nothing
            for rc, amount in group.resources.items():
                key = f"{suffix}\x00{rc}"
                requests.append({"key": key, "resource_class": rc, "amount": amount, "tree_root": tree_root})
        return requests

    def _providers_with_capacity(self, scope: set[str] | None) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """(suffix, class) -> {(provider, root)} with room for that group's amount,
        in the trees of ``scope`` (None: every tree) and in the sharing providers."""
        requests = self._capacity_requests()
        found: dict[tuple[str, str], set[tuple[str, str]]] = {}
        if scope is None:
            rows = self._read("providers_with_capacity", requests=requests)
        else:
            rows = self._read(
                "providers_in_trees_with_capacity",
                requests=requests,
                roots=sorted(scope),
                sharing=sorted(self.sharing),
            )
        for row in rows:
            suffix, rc = row["key"].split("\x00")
            pairs = found.setdefault((suffix, rc), set())
            for rp, root, used, capacity, max_unit in row["providers"]:
                pairs.add((rp, root))
                self.root_of[rp] = root
                self.inventory[rp, rc] = {"used": used, "capacity": capacity, "max_unit": max_unit}
        for suffix, group in self.request.groups.items():
            for rc in group.resources:
                if (suffix, rc) not in found:
                    raise NoCandidates
        return found

    def _sharing_anchors(self, providers: set[str]) -> dict[str, set[str]]:
        """Sharing provider -> roots of the trees it serves (read once per provider)."""
        missing = sorted((providers & self.sharing) - self.anchors.keys())
        if missing:
            for rp in missing:
                self.anchors[rp] = set()
            for row in self._read("sharing_anchors", sharing=missing):
                self.anchors[row["provider"]] = set(row["anchors"])
        return self.anchors

    def _trait_holders(self) -> dict[str, set[str]]:
        """Trait -> the providers that have it, for every trait the groups name."""
        names = sorted(set().union(*(g.trait_names for g in self.request.groups.values())))
        if not names:
            return {}

        def by_trait(rows: list[dict]) -> dict[str, set[str]]:
            holders = {name: set() for name in names}
            for row in rows:
                holders[row["trait"]] = set(row["providers"])
            return holders

        return self._read_once("trait_holders", by_trait, names=names)

    def _has(self, rp: str, trait: str) -> bool:
        return rp in self.holders[trait]

    def _providers_in_aggregates(self, member_of: list) -> set[str]:
        return self._read_once(
            "providers_in_aggregates",
            lambda rows: {r["provider"] for r in rows},
            member_of=[sorted(any_of) for any_of in member_of],
        )

    def _aggregate_filters(self, group: RequestGroup) -> tuple[set[str] | None, set[str]]:
        """The providers a group's member_of allows (None: no member_of), and those
        its forbidden aggregates exclude."""
        in_aggregates = None
        if group.member_of:
            in_aggregates = self._providers_in_aggregates(group.member_of)
            if not in_aggregates:
                raise NoCandidates
        bad = self._providers_in_aggregates([group.forbidden_aggregates]) if group.forbidden_aggregates else set()
        return in_aggregates, bad

    def _in_anchor_filter(self, root: str) -> bool:
        return self.anchor_roots is None or root in self.anchor_roots

    # -- one provider per group --------------------------------------------------
    def _single_provider(self, group: RequestGroup) -> list[PartialRequest]:
        """Every provider that satisfies the whole group on its own."""
        in_aggregates, bad_aggregates = self._aggregate_filters(group)
        if group.resources:
            per_class = [self.capacity[group.suffix, rc] for rc in group.resources]
            pairs = set.intersection(*per_class)
        elif group.required:
            # A resourceless group; Placement applies no in_tree to it.
            pairs = self._read_once(
                "providers_with_traits",
                _provider_root_pairs,
                required=[sorted(any_of) for any_of in group.required],
            )
        elif in_aggregates is not None:
            pairs = self._read_once("roots_of", _provider_root_pairs, uuids=sorted(in_aggregates))
        else:
            return []
        self.root_of.update(pairs)

        def acceptable(rp: str) -> bool:
            return (
                all(any(self._has(rp, t) for t in any_of) for any_of in group.required)
                and not any(self._has(rp, t) for t in group.forbidden)
                and (in_aggregates is None or rp in in_aggregates)
                and rp not in bad_aggregates
            )

        found = []
        resources = tuple(sorted(group.resources.items()))
        for rp, root in sorted(pairs):
            if not acceptable(rp):
                continue
            partial = PartialRequest(root, group.suffix, tuple((rp, rc, n) for rc, n in resources), frozenset([rp]))
            if self._in_anchor_filter(root):
                found.append(partial)
            # A sharing provider can also serve the other trees in its aggregates.
            for anchor in sorted(self._sharing_anchors({rp}).get(rp, ())):
                if anchor != root and self._in_anchor_filter(anchor):
                    found.append(dataclasses.replace(partial, anchor=anchor))
        return found

    # -- the unsuffixed group: spread over a tree and its sharing providers ----------
    def _spread_over_tree(self, group: RequestGroup) -> list[PartialRequest]:
        in_aggregates, bad = self._aggregate_filters(group)
        options: dict[str, dict[str, set[str]]] | None = None  # anchor -> class -> providers
        for rc in group.resources:
            pairs = set(self.capacity[group.suffix, rc])
            if group.in_tree is None:
                # Sharing providers with room count for every tree they serve.
                sharing = {rp for rp, _ in pairs if rp in self.sharing}
                if in_aggregates is not None:
                    sharing &= in_aggregates
                pairs |= {(rp, anchor) for rp in sharing for anchor in self.anchors.get(rp, ())}
            if self.anchor_roots is not None:
                pairs = {(rp, root) for rp, root in pairs if root in self.anchor_roots}
            if in_aggregates is not None:
                # An aggregate on the root spans the whole tree.
                pairs = {(rp, root) for rp, root in pairs if rp in in_aggregates or root in in_aggregates}
            if bad:
                pairs = {(rp, root) for rp, root in pairs if rp not in bad and root not in bad}
            by_anchor: dict[str, set[str]] = {}
            for rp, anchor in pairs:
                by_anchor.setdefault(anchor, set()).add(rp)
            if options is None:
                options = {anchor: {rc: rps} for anchor, rps in by_anchor.items()}
            else:
                # Keep only trees that can serve every class so far.
                options = {a: dict(o, **{rc: by_anchor[a]}) for a, o in options.items() if a in by_anchor}
            if not options:
                return []

        found = []
        classes = sorted(group.resources)
        for anchor in sorted(options):
            for combination in itertools.product(*(sorted(options[anchor][rc]) for rc in classes)):
                if self._traits_satisfied(combination, group):
                    found.append(
                        PartialRequest(
                            anchor,
                            group.suffix,
                            tuple((rp, rc, group.resources[rc]) for rp, rc in zip(combination, classes)),
                            frozenset(combination),
                        )
                    )
        return found

    def _traits_satisfied(self, providers: tuple[str, ...], group: RequestGroup) -> bool:
        """Placement's rule for the unsuffixed group: no provider used has a forbidden
        trait, and together the providers used have every required trait."""
        if any(self._has(rp, t) for rp in providers for t in group.forbidden):
            return False
        return all(any(self._has(rp, t) for rp in providers for t in any_of) for any_of in group.required)

    # -- combining the groups -------------------------------------------------------
    def _combine(self, partials: dict[str, list[PartialRequest]], limit: int | None) -> list[dict]:
        suffixes = list(partials)
        by_anchor: dict[str, dict[str, list[PartialRequest]]] = {}
        for suffix, found in partials.items():
            for partial in found:
                by_anchor.setdefault(partial.anchor, {}).setdefault(suffix, []).append(partial)
        if self.request.same_subtrees:
            named = set().union(*self.request.same_subtrees)
            self._load_lineages({rp for s in named & set(partials) for p in partials[s] for rp in p.providers})
        isolate = self.request.group_policy == "isolate"
        blind_to_trees = not self.request.nested_aware and self.has_trees
        results: list[dict] = []
        # A candidate that uses a provider of its own tree can come from that
        # tree only; one made wholly of sharing providers can come from every
        # tree they serve, and is kept once.
        shared_only_seen = self.shared_only_seen
        for anchor in sorted(by_anchor):
            lists = by_anchor[anchor]
            if len(lists) != len(suffixes):
                continue  # this tree cannot satisfy every group
            if not self._enough_in_tree(lists) or (isolate and not _distinct_providers_possible(lists)):
                continue
            for combination in self._fitting_products([lists[s] for s in suffixes], isolate):
                if not self._same_subtree_satisfied(combination):
                    continue
                body = _allocation_request(combination)
                if blind_to_trees and not self._one_provider_per_tree(body):
                    continue
                if self.sharing.issuperset(body["allocations"]):
                    key = _identity(body)
                    if key in shared_only_seen:
                        continue
                    shared_only_seen.add(key)
                results.append(body)
                if limit and len(results) >= limit:
                    return results
        return results

    def _one_provider_per_tree(self, body: dict) -> bool:
        """Before 1.29 (a client blind to trees) a candidate may take from one provider per tree only."""
        roots = [self.root_of[rp] for rp in body["allocations"]]
        return len(roots) == len(set(roots))

    def _enough_in_tree(self, lists: dict[str, list[PartialRequest]]) -> bool:
        """Placement's pre-check (bug 2160721): a class asked for by several groups
        must be free in the tree, all its providers together, at least as much as
        the groups ask in all. Else the product below would try every way first."""
        asked: collections.Counter = collections.Counter()
        for rc, amount in ((rc, n) for s in lists for rc, n in self.request.groups[s].resources.items()):
            asked[rc] += amount
        offering = {(rp, rc) for found in lists.values() for p in found for rp, rc, _ in p.resources}
        free: collections.Counter = collections.Counter()
        for rp, rc in offering:
            limits = self.inventory[rp, rc]
            free[rc] += max(limits["capacity"] - limits["used"], 0)
        return all(free[rc] >= amount for rc, amount in asked.items())

    def _fitting_products(self, lists: list[list[PartialRequest]], isolate: bool) -> Iterator[tuple]:
        """The product of one partial request per group, pruned as it is built:
        a branch stops as soon as a provider would be over capacity or over
        max_unit, or (with isolate) two suffixed groups share a provider.

        Depth first, with a stack of its own (a request may have thousands of
        groups), and within a budget: every partial request tried costs a step,
        every candidate found gives back one step per group, and a search that
        runs out is refused rather than left running for minutes."""
        inventory = self.inventory
        # Per level: the partial requests still to try, and the totals and the
        # providers of suffixed groups (isolate) of the choices above it.
        frames: list[tuple[Iterator[PartialRequest], dict, frozenset]] = [(iter(lists[0]), {}, frozenset())]
        chosen: list[PartialRequest] = []
        while frames:
            options, totals, granular = frames[-1]
            partial = next(options, None)
            if partial is None:
                frames.pop()
                if chosen:
                    chosen.pop()
                continue
            self.steps_left -= 1
            if self.steps_left < 0:
                raise BadRequest(
                    f"The search for allocation candidates was stopped after {SEARCH_STEPS:,} steps: "
                    f"{len(lists)} request groups can be combined in too many ways here. "
                    "Ask for fewer groups (one group may ask for several units of a class).",
                    SEARCH_TOO_LARGE,
                )
            next_granular = granular
            if isolate and partial.suffix:
                (rp,) = partial.providers
                if rp in granular:
                    continue
                next_granular = granular | partial.providers
            next_totals = dict(totals)
            fits = True
            for rp, rc, amount in partial.resources:
                total = next_totals.get((rp, rc), 0) + amount
                limits = inventory[rp, rc]
                if limits["used"] + total > limits["capacity"] or total > limits["max_unit"]:
                    fits = False
                    break
                next_totals[rp, rc] = total
            if not fits:
                continue
            if len(frames) == len(lists):
                self.steps_left += len(lists)
                yield (*chosen, partial)
                continue
            chosen.append(partial)
            frames.append((iter(lists[len(frames)]), next_totals, next_granular))

    def _load_lineages(self, providers: set[str]) -> None:
        missing = sorted(providers - self.lineage.keys())
        if missing:
            for lineage in self._read("lineages", uuids=missing)[0]["lineages"]:
                self.lineage[lineage[-1]] = lineage

    def _same_subtree_satisfied(self, combination: tuple[PartialRequest, ...]) -> bool:
        """For each same_subtree set: one of the providers chosen for its groups is
        an ancestor (or the same) of all the others."""
        for subtree in self.request.same_subtrees:
            providers = set().union(*(p.providers for p in combination if p.suffix in subtree))
            if not any(all(top in self.lineage[rp] for rp in providers) for top in providers):
                return False
        return True

    # -- the summaries ---------------------------------------------------------------
    def _summaries(self, allocation_requests: list[dict]) -> dict:
        """Every provider of every tree that an allocation request uses."""
        roots = sorted({self.root_of[rp] for ar in allocation_requests for rp in ar["allocations"]})
        if not roots:
            return {}
        summaries = {
            uuid: {
                "resources": {rc: {"capacity": capacity, "used": used} for rc, capacity, used in inventories},
                "traits": sorted(traits, key=_creation_order),
                "parent_provider_uuid": parent,
                "root_provider_uuid": root,
            }
            for uuid, parent, root, traits, inventories in self._read("trees", roots=roots)[0]["providers"]
        }
        if not self.request.nested_aware:
            # A client blind to trees hears only of the providers it is offered.
            used = {rp for ar in allocation_requests for rp in ar["allocations"]}
            summaries = {uuid: summary for uuid, summary in summaries.items() if uuid in used}
        return summaries


def _creation_order(trait: str) -> tuple[bool, str]:
    """Placement lists a provider's traits by trait id: the standard traits, synced
    when its database is made, before every custom one (gabbi checks this order)."""
    return (catalog.is_custom(trait), trait)


def _distinct_providers_possible(lists: dict[str, list[PartialRequest]]) -> bool:
    """With group_policy=isolate: can every suffixed group have a provider of its
    own? A bipartite matching (augmenting paths, searched breadth first), so that
    33 groups over 32 providers fail at once instead of after every permutation."""
    options = [sorted({rp for p in found for rp in p.providers}) for suffix, found in lists.items() if suffix]
    if len(options) > len({rp for providers in options for rp in providers}):
        return False
    owner: dict[str, int] = {}  # provider -> the group it is given to
    for group in range(len(options)):
        came_from: dict[int, tuple[int, str] | None] = {group: None}  # group -> (group, provider) before it
        queue, free = collections.deque([group]), None
        while queue and free is None:
            current = queue.popleft()
            for rp in options[current]:
                holder = owner.get(rp)
                if holder is None:
                    free = (current, rp)
                    break
                if holder not in came_from:
                    came_from[holder] = (current, rp)
                    queue.append(holder)
        if free is None:
            return False
        step: tuple[int, str] | None = free
        while step is not None:  # each group on the path takes the provider the next one gave up
            current, rp = step
            owner[rp] = current
            step = came_from[current]
    return True


def _first_root(rows: list[dict]) -> str | None:
    return rows[0]["root"] if rows else None


def _roots(rows: list[dict]) -> set[str]:
    return {r["root"] for r in rows}


def _provider_root_pairs(rows: list[dict]) -> set[tuple[str, str]]:
    return {(r["provider"], r["root"]) for r in rows}


def _allocation_request(combination: tuple[PartialRequest, ...]) -> dict:
    """Consolidate one partial request per group into Placement's shape."""
    allocations: dict[str, dict[str, int]] = {}
    mappings: dict[str, set[str]] = {}
    for partial in combination:
        for rp, rc, amount in partial.resources:
            resources = allocations.setdefault(rp, {})
            resources[rc] = resources.get(rc, 0) + amount
        mappings.setdefault(partial.suffix, set()).update(partial.providers)
    return {
        "allocations": {rp: {"resources": res} for rp, res in allocations.items()},
        "mappings": {s: sorted(p) for s, p in mappings.items()},
    }


def _identity(body: dict) -> tuple:
    """What makes two allocation requests the same, whatever their order."""
    return (
        frozenset((rp, rc, n) for rp, a in body["allocations"].items() for rc, n in a["resources"].items()),
        frozenset((s, tuple(p)) for s, p in body["mappings"].items()),
    )
