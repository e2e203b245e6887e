"""Resource providers: create, read, list (with Placement's filters), rename,
re-parent and delete them, set their traits and aggregates, and read
provider trees back out for people.

Writes follow Placement 1.39 (``POST /resource_providers``,
``PUT``/``DELETE /resource_providers/{uuid}``, ``PUT .../traits``,
``PUT .../aggregates``) with its checks, their order and its error codes, so
the same sequence of calls gets the same answers from the graph and from the
real Placement; where an older microversion behaves differently (no
re-parenting before 1.37, aggregates without generations before 1.19) a
parameter says so. Each operation is one transaction; a refused one changes
nothing.

Concurrency: every write first takes the write lock of the provider(s) it
changes (by setting and removing a scratch property, see ``LOCK_PROVIDERS``),
and only then reads and checks the state it depends on (the generation, the
children, the allocations), inside the same transaction. A concurrent writer
on the same provider, including an allocation claim in
:mod:`workbench.engine.allocations`, waits for that lock and then sees the
committed result. The generation is bumped exactly where Placement bumps it:
traits (only when they change), aggregates (always), inventories; not when a
provider is renamed or re-parented.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any, Iterable
from urllib.parse import parse_qsl

import neo4j
from neo4j.exceptions import ConstraintError

from workbench import catalog
from workbench.graphdb.db import Graph, Reader
from workbench.engine.errors import (
    CONCURRENT_UPDATE,
    DUPLICATE_NAME,
    PROVIDER_CANNOT_DELETE_PARENT,
    PROVIDER_IN_USE,
    BadRequest,
    Conflict,
    NotFound,
)
from workbench.engine.request import build_query
from workbench.ids import normalise_uuid

MAX_NAME_LENGTH = 200  # Placement's schema: resource provider names
MAX_TRAIT_LENGTH = 255  # Placement's schema: trait names

# "Leave the parent as it is" for update_provider (None means: make it a root).
KEEP = ...

# -- Cypher --------------------------------------------------------------------------------

PROVIDER = """
// One provider with its parent and the root of its tree (the root is the
// ancestor with no parent; a root is its own root).
MATCH (rp:Provider {uuid: $uuid})
OPTIONAL MATCH (parent:Provider)-[:PARENT_OF]->(rp)
CALL (rp) {
  MATCH (root:Provider)-[:PARENT_OF*0..]->(rp)
  WHERE NOT EXISTS { (:Provider)-[:PARENT_OF]->(root) }
  RETURN root.uuid AS root_uuid
}
RETURN rp.uuid AS uuid, rp.name AS name, rp.generation AS generation,
       parent.uuid AS parent_uuid, root_uuid
"""

LOCK_PROVIDERS = """
// Take each provider's write lock without changing it, in UUID order. Neo4j
// locks a node at its first write in a transaction and holds the lock until
// the end, so setting and removing a scratch property takes the lock and
// leaves nothing behind. (Writing the generation back unchanged is not
// enough: it reads the old value without waiting for the lock.) Each
// provider is then matched again: one deleted by the transaction we waited
// for is gone (the first match had still found it), and the generations
// returned are the latest.
UNWIND $uuids AS uuid
MATCH (rp:Provider {uuid: uuid})
SET rp._lock = true
REMOVE rp._lock
WITH uuid
MATCH (locked:Provider {uuid: uuid})
RETURN locked.uuid AS uuid, locked.generation AS generation
"""

BUMP_GENERATION = """
// Placement's signal that a provider changed; also takes its write lock.
MATCH (rp:Provider {uuid: $uuid})
SET rp.generation = rp.generation + 1
RETURN rp.generation AS generation
"""

FIND_DUPLICATES = """
// Who already has this name, and who this UUID.
OPTIONAL MATCH (by_name:Provider {name: $name})
OPTIONAL MATCH (by_uuid:Provider {uuid: $uuid})
RETURN by_name IS NOT NULL AS name_taken, by_uuid IS NOT NULL AS uuid_taken
"""

CREATE_PROVIDER = """
CREATE (rp:Provider {uuid: $uuid, name: $name, generation: 0})
WITH rp
// A child: hang it under its (already locked) parent.
OPTIONAL MATCH (parent:Provider {uuid: $parent})
FOREACH (_ IN CASE WHEN parent IS NULL THEN [] ELSE [1] END | CREATE (parent)-[:PARENT_OF]->(rp))
"""

PROVIDER_FILTERS = """
// GET /resource_providers, after the MATCH that names the candidates (rp):
// every filter is optional (null or empty matches all). $tree_root limits
// the list to one tree; $required is a list of any-of trait sets (each set
// needs one of its traits), likewise $member_of for aggregates; $resources
// asks for room for each amount, with Placement's per-class rule (capacity
// after usage, min/max unit, step).
WITH rp
WHERE ($uuid IS NULL OR rp.uuid = $uuid)
  AND ($name IS NULL OR rp.name = $name)
  AND ($tree_root IS NULL OR EXISTS { (:Provider {uuid: $tree_root})-[:PARENT_OF*0..]->(rp) })
  AND all(any_of IN $required WHERE EXISTS { (rp)-[:HAS_TRAIT]->(t:Trait) WHERE t.name IN any_of })
  AND NOT EXISTS { (rp)-[:HAS_TRAIT]->(t:Trait) WHERE t.name IN $forbidden_traits }
  AND all(any_of IN $member_of WHERE EXISTS { (rp)-[:MEMBER_OF]->(a:Aggregate) WHERE a.uuid IN any_of })
  AND NOT EXISTS { (rp)-[:MEMBER_OF]->(a:Aggregate) WHERE a.uuid IN $forbidden_aggregates }
  AND all(want IN $resources WHERE EXISTS {
        MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory {resource_class: want.resource_class})
        WHERE inv.min_unit <= want.amount <= inv.max_unit AND want.amount % inv.step_size = 0
          AND want.amount + reduce(used = 0, a IN [(inv)<-[c:CONSUMES]-(:Consumer) | c.used] | used + a)
              <= (inv.total - inv.reserved) * inv.allocation_ratio
      })
OPTIONAL MATCH (parent:Provider)-[:PARENT_OF]->(rp)
CALL (rp) {
  MATCH (root:Provider)-[:PARENT_OF*0..]->(rp)
  WHERE NOT EXISTS { (:Provider)-[:PARENT_OF]->(root) }
  RETURN root.uuid AS root_uuid
}
RETURN rp.uuid AS uuid, rp.name AS name, rp.generation AS generation,
       parent.uuid AS parent_uuid, root_uuid
ORDER BY rp.uuid
"""

# The list starts from the narrowest set its filters name, so that a lookup
# by UUID, name or tree is an index seek rather than a scan of every provider.
LIST_PROVIDERS_BY_UUID = "MATCH (rp:Provider {uuid: $uuid})" + PROVIDER_FILTERS
LIST_PROVIDERS_BY_NAME = "MATCH (rp:Provider {name: $name})" + PROVIDER_FILTERS
LIST_PROVIDERS_IN_TREE = "MATCH (:Provider {uuid: $tree_root})-[:PARENT_OF*0..]->(rp:Provider)" + PROVIDER_FILTERS
LIST_PROVIDERS = "MATCH (rp:Provider)" + PROVIDER_FILTERS

KNOWN_CUSTOM_CLASSES = """
// Custom resource classes exist as nodes; standard ones are known from os-resource-classes.
MATCH (r:ResourceClass) WHERE r.name IN $names
RETURN collect(r.name) AS names
"""

NAME_TAKEN = """
MATCH (other:Provider {name: $name}) WHERE other.uuid <> $uuid
RETURN count(other) > 0 AS taken
"""

ANCESTORS = """
// A provider and everything above it, up to its root.
MATCH (up:Provider)-[:PARENT_OF*0..]->(:Provider {uuid: $uuid})
RETURN up.uuid AS uuid
"""

IN_SUBTREE = """
// Is $candidate the provider itself or one of its descendants?
RETURN EXISTS {
  MATCH (:Provider {uuid: $uuid})-[:PARENT_OF*0..]->(:Provider {uuid: $candidate})
} AS inside
"""

SET_NAME_AND_PARENT = """
// Rename, and (when $move) replace the link to the parent: $parent null
// makes the provider a root of its own tree. Its subtree moves with it.
MATCH (rp:Provider {uuid: $uuid})
SET rp.name = $name
WITH rp
CALL (rp) {
  WITH rp WHERE $move
  OPTIONAL MATCH (:Provider)-[old:PARENT_OF]->(rp)
  DELETE old
  WITH DISTINCT rp
  MATCH (parent:Provider {uuid: $parent})
  CREATE (parent)-[:PARENT_OF]->(rp)
}
"""

DELETE_CHECKS = """
// What stops a delete: children (checked first, as Placement does) and allocations.
MATCH (rp:Provider {uuid: $uuid})
RETURN EXISTS { (rp)-[:PARENT_OF]->(:Provider) } AS has_children,
       EXISTS { (rp)-[:HAS_INVENTORY]->(:Inventory)<-[:CONSUMES]-(:Consumer) } AS has_allocations
"""

DELETE_PROVIDER = """
// The provider, its inventories, and its trait and aggregate links (the
// Trait and Aggregate nodes themselves stay: other providers may use them).
MATCH (rp:Provider {uuid: $uuid})
OPTIONAL MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
DETACH DELETE inv
WITH DISTINCT rp
DETACH DELETE rp
"""

PROVIDER_TRAITS = """
MATCH (rp:Provider {uuid: $uuid})
RETURN rp.generation AS generation,
       COLLECT { MATCH (rp)-[:HAS_TRAIT]->(t:Trait) RETURN t.name ORDER BY t.name } AS traits
"""

KNOWN_TRAITS = """
// Custom traits exist as nodes; standard ones are known from os-traits.
MATCH (t:Trait) WHERE t.name IN $names
RETURN collect(t.name) AS names
"""

REPLACE_TRAITS = """
MATCH (rp:Provider {uuid: $uuid})
CALL (rp) {
  MATCH (rp)-[link:HAS_TRAIT]->(t:Trait) WHERE NOT t.name IN $traits
  DELETE link
}
WITH rp
UNWIND $traits AS name
MERGE (t:Trait {name: name})
MERGE (rp)-[:HAS_TRAIT]->(t)
"""

PROVIDER_AGGREGATES = """
MATCH (rp:Provider {uuid: $uuid})
RETURN rp.generation AS generation,
       COLLECT { MATCH (rp)-[:MEMBER_OF]->(a:Aggregate) RETURN a.uuid ORDER BY a.uuid } AS aggregates
"""

REPLACE_AGGREGATES = """
// Aggregates are created on first use and never deleted, as in Placement.
MATCH (rp:Provider {uuid: $uuid})
CALL (rp) {
  MATCH (rp)-[link:MEMBER_OF]->(a:Aggregate) WHERE NOT a.uuid IN $aggregates
  DELETE link
}
WITH rp
UNWIND $aggregates AS agg
MERGE (a:Aggregate {uuid: agg})
MERGE (rp)-[:MEMBER_OF]->(a)
"""

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


# -- providers -----------------------------------------------------------------------------


def create_provider(graph: Graph, name: str, uuid: str | None = None, parent_uuid: str | None = None) -> dict:
    """``POST /resource_providers``: a new provider, generation 0, optionally under a parent.

    Returns Placement's response body (without links): uuid, name, generation,
    parent_provider_uuid, root_provider_uuid.
    """
    _check_name(name)
    if uuid is None:
        rp_uuid = str(uuidlib.uuid4())
    else:
        rp_uuid = _schema_uuid(uuid, "uuid")
    parent = None if parent_uuid is None else _schema_uuid(parent_uuid, "parent_provider_uuid")
    if not name:
        raise BadRequest(
            f'Unable to create resource provider "{name}", {rp_uuid}: '
            "Object action create failed because: name is required"
        )

    def work(tx: neo4j.ManagedTransaction) -> dict:
        root = rp_uuid
        if parent is not None:
            if parent == rp_uuid:
                raise BadRequest(
                    f'Unable to create resource provider "{name}", {rp_uuid}: Object action create failed '
                    "because: parent provider UUID cannot be same as UUID. Please set parent provider UUID "
                    "to None if there is no parent."
                )
            # Lock the parent, so it cannot be deleted or moved while the child is hung under it.
            if not tx.run(LOCK_PROVIDERS, uuids=[parent]).data():
                raise BadRequest(
                    f'Unable to create resource provider "{name}", {rp_uuid}: Object action create failed '
                    "because: parent provider UUID does not exist."
                )
            root = _record(tx, parent)["root_provider_uuid"]
        taken = tx.run(FIND_DUPLICATES, name=name, uuid=rp_uuid).single()
        # Placement (on SQLite) reports the name when both clash.
        if taken["name_taken"]:
            raise Conflict(f"Conflicting resource provider name: {name} already exists.", DUPLICATE_NAME)
        if taken["uuid_taken"]:
            raise Conflict(f"Conflicting resource provider uuid: {rp_uuid} already exists.", DUPLICATE_NAME)
        tx.run(CREATE_PROVIDER, uuid=rp_uuid, name=name, parent=parent).consume()
        return {
            "uuid": rp_uuid,
            "name": name,
            "generation": 0,
            "parent_provider_uuid": parent,
            "root_provider_uuid": root,
        }

    try:
        return graph.write(work)
    except ConstraintError:
        # A concurrent create took the name or UUID between our check and our write.
        raise Conflict(
            f"Conflicting resource provider name: {name} or uuid: {rp_uuid} already exists.", DUPLICATE_NAME
        ) from None


def get_provider(graph: Graph, uuid: str) -> dict:
    """``GET /resource_providers/{uuid}`` (without links)."""
    rp_uuid = _path_uuid(uuid)
    rows = graph.read(PROVIDER, uuid=rp_uuid)
    if not rows:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return _shape(rows[0])


def list_providers(
    graph: Graph,
    *,
    name: str | None = None,
    uuid: str | None = None,
    in_tree: str | None = None,
    member_of: Iterable[Iterable[str]] = (),
    forbidden_aggregates: Iterable[str] = (),
    required: Iterable[Iterable[str]] = (),
    forbidden_traits: Iterable[str] = (),
    resources: dict[str, int] | None = None,
) -> list[dict]:
    """``GET /resource_providers`` with Placement's filters, already parsed.

    ``member_of`` and ``required`` are lists of any-of sets (each set must be
    met by one of its members); ``resources`` maps class to amount, and a
    provider qualifies only if it has room for every amount. An ``in_tree``
    provider that does not exist gives an empty list (as in Placement);
    unknown traits or resource classes are a 400. ``uuid`` and ``in_tree``
    are compared as given (a UUID in another spelling matches nothing), and
    an empty ``name``, ``uuid`` or ``in_tree`` filters nothing, both as in
    Placement. Sorted by UUID.
    """
    name, uuid, in_tree = name or None, uuid or None, in_tree or None
    required = [sorted(any_of) for any_of in required]
    forbidden_traits = sorted(forbidden_traits)
    resources = dict(resources or {})

    def work(reader: Reader) -> list[dict]:
        tree_root = None
        if in_tree is not None:
            rows = reader.read(PROVIDER, uuid=in_tree)
            if not rows:
                return []
            tree_root = rows[0]["root_uuid"]
        # Placement's order of complaints: required traits, forbidden traits, classes.
        for names in ([t for any_of in required for t in any_of], forbidden_traits):
            custom = set(reader.read(KNOWN_TRAITS, names=names)[0]["names"]) if names else set()
            if unknown := [t for t in names if t not in catalog.standard_traits() and t not in custom]:
                raise BadRequest(f'Invalid trait(s) in "required" parameter: No such trait(s): {unknown[0]}.')
        if unknown := unknown_resource_classes(reader, list(resources)):
            raise BadRequest(
                f"Invalid resource class in resources parameter: No such resource class {unknown[0]}."
            )
        if uuid is not None:
            query = LIST_PROVIDERS_BY_UUID
        elif name is not None:
            query = LIST_PROVIDERS_BY_NAME
        elif tree_root is not None:
            query = LIST_PROVIDERS_IN_TREE
        else:
            query = LIST_PROVIDERS
        rows = reader.read(
            query,
            uuid=uuid,
            name=name,
            tree_root=tree_root,
            required=required,
            forbidden_traits=forbidden_traits,
            member_of=[sorted(_aggregate_key(a) for a in any_of) for any_of in member_of],
            forbidden_aggregates=sorted(_aggregate_key(a) for a in forbidden_aggregates),
            resources=[{"resource_class": rc, "amount": amount} for rc, amount in resources.items()],
        )
        return [_shape(row) for row in rows]

    return graph.reading(work)


def unknown_resource_classes(reader: Graph | Reader, names: list) -> list[str]:
    """Those of ``names`` that are neither standard nor existing custom classes (in order).

    ``reader`` is anything with ``read(query, **params)``: a :class:`Graph`
    or a :class:`workbench.graphdb.db.Reader` over a transaction.
    """
    candidates = [str(n) for n in names if n not in catalog.standard_resource_classes()]
    if not candidates:
        return []
    custom = set(reader.read(KNOWN_CUSTOM_CLASSES, names=candidates)[0]["names"])
    return [n for n in candidates if n not in custom]


def update_provider(
    graph: Graph,
    uuid: str,
    name: str,
    parent_uuid: Any = KEEP,
    generation: int | None = None,
    allow_reparenting: bool = True,
) -> dict:
    """``PUT /resource_providers/{uuid}``: rename, re-parent or un-parent.

    ``parent_uuid``: omitted (``KEEP``) leaves the parent as it is, ``None``
    makes the provider a root, a UUID moves it (with its subtree) under that
    provider, which must not be in its own subtree. Before 1.37
    (``allow_reparenting=False``) only a root may be given a parent: moving
    or un-parenting a child is a 400. Like Placement this does not change
    the generation. Placement's PUT takes no generation; here
    ``generation``, if given, must be the current one (else 409
    ``placement.concurrent_update``).
    """
    rp_uuid = _path_uuid(uuid)
    if generation is not None:
        _check_generation_type(generation)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        if not tx.run(LOCK_PROVIDERS, uuids=[rp_uuid]).data():
            raise NotFound(f"No resource provider with uuid {uuid} found")
        # Placement validates the body only once it has found the provider.
        _check_name(name)
        parent = parent_uuid
        if parent is not KEEP and parent is not None:
            parent = _schema_uuid(parent, "parent_provider_uuid")
        current = _record(tx, rp_uuid)
        if generation is not None and generation != current["generation"]:
            raise Conflict(
                f"resource provider generation conflict: expected {generation}, "
                f"found {current['generation']}",
                CONCURRENT_UPDATE,
            )
        failed = f"Unable to save resource provider {rp_uuid}: Object action update failed because: "
        old_parent = current["parent_provider_uuid"]
        if parent is KEEP:
            parent = old_parent
        move = parent != old_parent
        if parent is None and move and not allow_reparenting:
            raise BadRequest(failed + "un-parenting a provider is not currently allowed.")
        if parent is not None:
            if not _lock_ancestors(tx, rp_uuid, parent):
                raise BadRequest(
                    f"Unable to save resource provider {rp_uuid}: Object action create failed because: "
                    "parent provider UUID does not exist."
                )
            if move and old_parent is not None and not allow_reparenting:
                raise BadRequest(failed + "re-parenting a provider is not currently allowed.")
            if tx.run(IN_SUBTREE, uuid=rp_uuid, candidate=parent).single()["inside"]:
                raise BadRequest(failed + "creating loop in the provider tree is not allowed.")
        if tx.run(NAME_TAKEN, name=name, uuid=rp_uuid).single()["taken"]:
            raise Conflict(f"Conflicting resource provider {name} already exists.", DUPLICATE_NAME)
        tx.run(SET_NAME_AND_PARENT, uuid=rp_uuid, name=name, parent=parent, move=move).consume()
        return _record(tx, rp_uuid)

    try:
        return graph.write(work)
    except ConstraintError:
        raise Conflict(f"Conflicting resource provider {name} already exists.", DUPLICATE_NAME) from None


def delete_provider(graph: Graph, uuid: str, generation: int | None = None) -> None:
    """``DELETE /resource_providers/{uuid}``, with its inventories and its trait and aggregate links.

    Refused while it has children (409 ``cannot_delete_parent``) or
    allocations (409 ``resource_provider.inuse``). Placement's DELETE takes
    no generation; here ``generation``, if given, must be the current one.
    """
    rp_uuid = _path_uuid(uuid)
    if generation is not None:
        _check_generation_type(generation)

    def work(tx: neo4j.ManagedTransaction) -> None:
        locked = tx.run(LOCK_PROVIDERS, uuids=[rp_uuid]).data()
        if not locked:
            raise NotFound(f"No resource provider with uuid {uuid} found for delete")
        _check_generation(locked[0]["generation"], generation, "resource provider generation conflict")
        checks = tx.run(DELETE_CHECKS, uuid=rp_uuid).single()
        if checks["has_children"]:
            raise Conflict(
                f"Unable to delete parent resource provider {rp_uuid}: It has child resource providers.",
                PROVIDER_CANNOT_DELETE_PARENT,
            )
        if checks["has_allocations"]:
            raise Conflict(
                f"Unable to delete resource provider {rp_uuid}: Resource provider has allocations.",
                PROVIDER_IN_USE,
            )
        tx.run(DELETE_PROVIDER, uuid=rp_uuid).consume()

    graph.write(work)


# -- traits ----------------------------------------------------------------------------------


def get_traits(graph: Graph, uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/traits``: ``{"traits": [...], "resource_provider_generation": n}``."""
    rows = graph.read(PROVIDER_TRAITS, uuid=_path_uuid(uuid))
    if not rows:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return {"traits": rows[0]["traits"], "resource_provider_generation": rows[0]["generation"]}


def set_traits(graph: Graph, uuid: str, traits: Iterable[str], generation: int) -> dict:
    """``PUT /resource_providers/{uuid}/traits``: replace the provider's traits.

    Every trait must exist (standard, or a custom one created before): an
    unknown one is a 400. The generation must be the current one (409
    ``placement.concurrent_update``); it is bumped only if the set changes,
    as in Placement.
    """
    # Placement validates this body before it looks the provider up.
    wanted = _check_trait_names(traits)
    _check_generation_type(generation)
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        locked = tx.run(LOCK_PROVIDERS, uuids=[rp_uuid]).data()
        if not locked:
            raise NotFound(f"No resource provider with uuid {uuid} found")
        current = locked[0]["generation"]
        _check_generation(
            current,
            generation,
            "Resource provider's generation already changed. Please update the generation and try again.",
        )
        custom = set(tx.run(KNOWN_TRAITS, names=sorted(wanted)).single()["names"])
        if unknown := sorted(wanted - catalog.standard_traits() - custom):
            raise BadRequest(f"No such trait {', '.join(unknown)}")
        existing = set(tx.run(PROVIDER_TRAITS, uuid=rp_uuid).single()["traits"])
        if existing != wanted:
            tx.run(REPLACE_TRAITS, uuid=rp_uuid, traits=sorted(wanted)).consume()
            current = tx.run(BUMP_GENERATION, uuid=rp_uuid).single()["generation"]
        return {"traits": sorted(wanted), "resource_provider_generation": current}

    return graph.write(work)


# -- aggregates -----------------------------------------------------------------------------


def get_aggregates(graph: Graph, uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/aggregates`` (1.19+ shape, UUIDs sorted)."""
    rows = graph.read(PROVIDER_AGGREGATES, uuid=_path_uuid(uuid))
    if not rows:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return {"aggregates": rows[0]["aggregates"], "resource_provider_generation": rows[0]["generation"]}


def set_aggregates(graph: Graph, uuid: str, aggregates: Iterable[str], generation: int | None) -> dict:
    """``PUT /resource_providers/{uuid}/aggregates``: replace the provider's aggregates.

    From 1.19 the generation must be the current one (409
    ``placement.concurrent_update``) and is always bumped, as in Placement.
    Before 1.19 (``generation=None``) there is neither check nor bump.
    Aggregate UUIDs are stored in canonical (lower-case, dashed) form.
    """
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        # Placement: provider first (404), then the body (400), then the generation (409).
        current = lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        wanted = _check_aggregates(aggregates)
        if generation is not None:
            _check_generation_type(generation)
            _check_generation(
                current,
                generation,
                "Resource provider's generation already changed. Please update the generation and try again.",
            )
        tx.run(REPLACE_AGGREGATES, uuid=rp_uuid, aggregates=wanted).consume()
        if generation is not None:
            current = bump_generation(tx, rp_uuid)
        return {"aggregates": wanted, "resource_provider_generation": current}

    return graph.write(work)


# -- reading trees for people --------------------------------------------------------------


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


# -- helpers shared with inventories.py ------------------------------------------------------


def lock_provider(tx: neo4j.ManagedTransaction, uuid: str, not_found: str) -> int:
    """Take one provider's write lock; return its generation, or raise NotFound(``not_found``)."""
    locked = tx.run(LOCK_PROVIDERS, uuids=[uuid]).data()
    if not locked:
        raise NotFound(not_found)
    return locked[0]["generation"]


def bump_generation(tx: neo4j.ManagedTransaction, uuid: str) -> int:
    """Add one to a provider's generation; return the new one."""
    return tx.run(BUMP_GENERATION, uuid=uuid).single()["generation"]


def _record(tx: neo4j.ManagedTransaction, uuid: str) -> dict:
    return _shape(tx.run(PROVIDER, uuid=uuid).single().data())


def _shape(row: dict) -> dict:
    return {
        "uuid": row["uuid"],
        "name": row["name"],
        "generation": row["generation"],
        "parent_provider_uuid": row["parent_uuid"],
        "root_provider_uuid": row["root_uuid"],
    }


def _lock_ancestors(tx: neo4j.ManagedTransaction, uuid: str, parent: str) -> bool:
    """Lock the moving provider, the new parent and every ancestor of that parent.

    Then no concurrent re-parent can change the new parent's ancestry (moving
    a provider needs its lock) while we check for a loop. The ancestry is read
    again after locking until it is all locked. False if the parent does not exist.
    """
    locked: set[str] = set()
    while True:
        chain = {r["uuid"] for r in tx.run(ANCESTORS, uuid=parent).data()}
        if not chain:
            return False
        missing = (chain | {uuid}) - locked
        if not missing:
            return True
        tx.run(LOCK_PROVIDERS, uuids=sorted(missing)).consume()
        locked |= missing


def _check_generation(current: int, expected: int | None, message: str) -> None:
    if expected is not None and expected != current:
        raise Conflict(message, CONCURRENT_UPDATE)


def _check_generation_type(generation: Any) -> None:
    if not _is_int(generation):
        raise BadRequest(f"JSON does not validate: {generation!r} is not of type 'integer'")


def _is_int(value: Any) -> bool:
    """JSON schema's "integer": an int (not a bool) or a float without a fraction."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise BadRequest(f"JSON does not validate: {name!r} is not of type 'string'")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"JSON does not validate: {name!r} is too long")


def _is_uuid_like(value: Any) -> bool:
    """oslo.utils' ``is_uuid_like``, the check behind Placement's "uuid" format."""
    if not isinstance(value, str):
        return False
    try:
        canonical = str(uuidlib.UUID(value)).replace("-", "")
    except (TypeError, ValueError, AttributeError):
        return False
    plain = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "").lower()
    return canonical == plain


def _schema_uuid(value: Any, field: str) -> str:
    """A UUID in a request body: valid as Placement's schema says, returned canonical."""
    if not _is_uuid_like(value):
        raise BadRequest(f"JSON does not validate: {value!r} is not a 'uuid' (field {field})")
    return str(uuidlib.UUID(value))


def _aggregate_key(value: str) -> str:
    """Aggregates are stored canonical (see set_aggregates); match them that way."""
    return normalise_uuid(value) or value


def _path_uuid(value: Any) -> str:
    """A provider UUID in a URL path: canonical form, or a value that matches no provider."""
    return normalise_uuid(value) or str(value)


def _check_trait_names(traits: Any) -> set[str]:
    if not isinstance(traits, (list, tuple, set, frozenset)):
        raise BadRequest(f"JSON does not validate: {traits!r} is not of type 'array'")
    names = list(traits)
    for name in names:
        if not isinstance(name, str):
            raise BadRequest(f"JSON does not validate: {name!r} is not of type 'string'")
        if not 1 <= len(name) <= MAX_TRAIT_LENGTH:
            raise BadRequest(f"JSON does not validate: trait {name!r} must be 1 to {MAX_TRAIT_LENGTH} characters")
    return set(names)


def _check_aggregates(aggregates: Any) -> list[str]:
    if not isinstance(aggregates, (list, tuple, set, frozenset)):
        raise BadRequest(f"JSON does not validate: {aggregates!r} is not of type 'array'")
    aggregates = list(aggregates)
    if len(set(map(repr, aggregates))) != len(aggregates):
        raise BadRequest(f"JSON does not validate: {aggregates!r} has non-unique elements")
    clean: list[str] = []
    for agg in aggregates:
        canonical = _schema_uuid(agg, "aggregates")
        if canonical not in clean:
            clean.append(canonical)
    return clean


# -- reading inventories, sharing and aggregate names for people ---------------------------

INVENTORY_DETAILS = """
// Every inventory with all its limits (what `workbench providers --inventories` prints),
// trees listed top-down as in PROVIDER_TREES.
MATCH path = (root:Provider)-[:PARENT_OF*0..]->(rp:Provider)-[:HAS_INVENTORY]->(inv:Inventory)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
CALL (inv) {
  OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(:Consumer)
  RETURN coalesce(sum(allocation.used), 0) AS used
}
RETURN [p IN nodes(path)[..-1] | p.name] AS lineage, rp.name AS provider, rp.uuid AS uuid,
       inv.resource_class AS resource_class, inv.total AS total, inv.reserved AS reserved,
       inv.min_unit AS min_unit, inv.max_unit AS max_unit, inv.step_size AS step_size,
       inv.allocation_ratio AS allocation_ratio, used,
       toInteger((inv.total - inv.reserved) * inv.allocation_ratio) AS capacity
ORDER BY lineage, resource_class
"""

SHARING_SERVES = """
// Which trees each sharing provider serves, and through which aggregate: a tree is
// served when one of its providers is in an aggregate with the sharing provider
// (the rule of SHARING_ANCHORS in candidates.py). A path uses each relationship once,
// so `member` is never the sharing provider itself: the trees listed are the others.
MATCH (sharing:Provider)-[:HAS_TRAIT]->(:Trait {name: 'MISC_SHARES_VIA_AGGREGATE'})
MATCH (sharing)-[:MEMBER_OF]->(agg:Aggregate)<-[:MEMBER_OF]-(member:Provider)
MATCH (root:Provider)-[:PARENT_OF*0..]->(member)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
RETURN sharing.name AS sharing, sharing.uuid AS sharing_uuid, agg.uuid AS aggregate,
       agg.name AS aggregate_name, collect(DISTINCT root.name) AS trees
ORDER BY sharing, aggregate_name, aggregate
"""

AGGREGATES = """
// Every aggregate with its name (where a scenario gave one) and its members.
MATCH (agg:Aggregate)
RETURN agg.uuid AS uuid, agg.name AS name,
       COLLECT { MATCH (agg)<-[:MEMBER_OF]-(rp:Provider) RETURN rp.name ORDER BY rp.name } AS members
ORDER BY coalesce(agg.name, ''), agg.uuid
"""

AGGREGATES_NAMED = """
MATCH (agg:Aggregate) WHERE agg.name IN $names
RETURN agg.name AS name, collect(agg.uuid) AS uuids
"""

# member_of, member_of1, member_of_CPU, ...: the parameters whose values are aggregates.
MEMBER_OF_KEY = re.compile(r"^member_of[A-Za-z0-9_-]*$")
MEMBER_OF_VALUE = re.compile(r"^(!?(?:in:)?)(.*)$")


def inventory_details(graph: Graph) -> list[dict]:
    """One row per inventory: total, reserved, min_unit, max_unit, step_size,
    allocation_ratio, used and capacity; ``depth`` 0 is a root."""
    rows = graph.read(INVENTORY_DETAILS)
    for row in rows:
        row["depth"] = len(row.pop("lineage")) - 1
    return rows


def sharing_serves(graph: Graph) -> list[dict]:
    """Per sharing provider and aggregate: the trees it serves through that aggregate."""
    return graph.read(SHARING_SERVES)


def aggregates(graph: Graph) -> list[dict]:
    """Every aggregate: uuid, name (None if it was never given one) and member names."""
    return graph.read(AGGREGATES)


def resolve_aggregate_names(graph: Graph, query: str) -> tuple[str, list[str]]:
    """A Placement query string with aggregate NAMES in its ``member_of``
    parameters replaced by their UUIDs, and one note per name replaced.

    Placement accepts UUIDs only; a scenario's aggregates have names. A value
    that is a UUID already, or that names no aggregate, is left alone (so
    Placement's own error stands for a typo), and a query with nothing to
    replace is returned verbatim.
    """
    pairs = parse_qsl(query.strip().lstrip("?"), keep_blank_values=True)
    wanted = {
        name
        for key, value in pairs if MEMBER_OF_KEY.match(key)
        for name in MEMBER_OF_VALUE.match(value).group(2).split(",")
        if name and not _is_uuid_like(name)
    }
    if not wanted:
        return query, []
    found = {row["name"]: row["uuids"] for row in graph.read(AGGREGATES_NAMED, names=sorted(wanted))}
    notes = []
    for name, uuids in sorted(found.items()):
        if len(uuids) > 1:  # ambiguous: leave it for Placement to refuse
            notes.append(f"aggregate name {name!r} is used by {len(uuids)} aggregates; give the UUID")
        else:
            notes.append(f"aggregate name {name!r} resolved to its UUID {uuids[0]}")
    unique = {name: uuids[0] for name, uuids in found.items() if len(uuids) == 1}
    if not unique:
        return query, notes

    def resolved(value: str) -> str:
        prefix, names = MEMBER_OF_VALUE.match(value).groups()
        return prefix + ",".join(unique.get(n, n) for n in names.split(","))

    return build_query([(k, resolved(v) if MEMBER_OF_KEY.match(k) else v) for k, v in pairs]), notes
