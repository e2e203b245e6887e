"""Resource classes and traits: Placement's catalogue, standard and custom.

Standard names come from os-resource-classes and os-traits (see
:mod:`workbench.catalog`) and are read-only. Custom ones (``CUSTOM_*``) are
nodes: ``(:ResourceClass {name})`` and ``(:Trait {name, custom: true})``.
A ``Trait`` node without ``custom`` is a standard trait some provider has
(``HAS_TRAIT`` needs a node at its end); it is not a catalogue entry.

The operations behind ``/resource_classes`` and ``/traits``, with
Placement's rules and words: a class is in use while an inventory has it, a
trait while a provider has it; in-use and standard entries cannot be
deleted. Names are checked against Placement's schemas by the HTTP layer;
the functions here trust them.
"""

from __future__ import annotations

import neo4j
import os_resource_classes
from neo4j.exceptions import ConstraintError

from workbench import catalog
from workbench.graphdb.db import Graph
from workbench.engine.errors import BadRequest, Conflict, NotFound

# -- Cypher: resource classes -------------------------------------------------------------------

CUSTOM_CLASSES = """
MATCH (rc:ResourceClass) RETURN rc.name AS name ORDER BY name
"""

CLASS_EXISTS = """
RETURN EXISTS { MATCH (:ResourceClass {name: $name}) } AS exists
"""

CREATE_CLASS = """
CREATE (:ResourceClass {name: $name})
"""

CLASS_IN_USE = """
// In use = some provider has an inventory of it (allocations need one too).
RETURN EXISTS { MATCH (:Inventory {resource_class: $name}) } AS in_use
"""

DELETE_CLASS = """
MATCH (rc:ResourceClass {name: $name}) DELETE rc
"""

RENAME_CLASS = """
// Inventories and quota limits name their class: they follow the rename
// (in Placement they refer to the class by id, so they follow it too).
MATCH (rc:ResourceClass {name: $old})
SET rc.name = $new
WITH rc
CALL (rc) {
  MATCH (inv:Inventory {resource_class: $old}) SET inv.resource_class = $new
}
CALL (rc) {
  MATCH (limit:Limit {resource_class: $old}) SET limit.resource_class = $new
}
"""

# -- Cypher: traits ----------------------------------------------------------------------------

TRAITS = """
// Custom traits, and every trait some provider has (for the "associated" filter).
RETURN COLLECT { MATCH (t:Trait {custom: true}) RETURN t.name } AS custom,
       COLLECT { MATCH (t:Trait) WHERE EXISTS { (:Provider)-[:HAS_TRAIT]->(t) } RETURN t.name } AS associated
"""

TRAIT_STATE = """
OPTIONAL MATCH (t:Trait {name: $name})
RETURN coalesce(t.custom, false) AS custom,
       t IS NOT NULL AND EXISTS { (:Provider)-[:HAS_TRAIT]->(t) } AS in_use
"""

ENSURE_TRAIT = """
// MERGE: the node may exist already, without the flag, if it was created
// before as a provider's trait (it cannot be: only known traits are set).
MERGE (t:Trait {name: $name})
SET t.custom = true
"""

DELETE_TRAIT = """
// DELETE, not DETACH DELETE: if a provider was given the trait after the
// check, Neo4j refuses to delete a node that still has relationships.
MATCH (t:Trait {name: $name}) DELETE t
"""


# -- resource classes ----------------------------------------------------------------------------


def list_resource_classes(graph: Graph) -> list[str]:
    """Every resource class: the standard ones in os-resource-classes' order, then custom ones."""
    return list(os_resource_classes.STANDARDS) + [row["name"] for row in graph.read(CUSTOM_CLASSES)]


def resource_class_exists(graph: Graph, name: str) -> bool:
    return name in catalog.standard_resource_classes() or graph.read(CLASS_EXISTS, name=name)[0]["exists"]


def get_resource_class(graph: Graph, name: str) -> str:
    """The class's name, or 404 ``No such resource class NAME.``"""
    if not resource_class_exists(graph, name):
        raise NotFound(f"No such resource class {name}.")
    return name


def create_resource_class(graph: Graph, name: str, exist_ok: bool = False) -> bool:
    """Create the custom class ``name``; True if created.

    If it exists: False with ``exist_ok`` (``PUT``, 1.7+), else 409 (``POST``).
    """

    def work(tx: neo4j.ManagedTransaction) -> bool:
        if tx.run(CLASS_EXISTS, name=name).single()["exists"]:
            if exist_ok:
                return False
            raise Conflict(f"Conflicting resource class already exists: {name}")
        tx.run(CREATE_CLASS, name=name).consume()
        return True

    try:
        return graph.write(work)
    except ConstraintError:  # created concurrently
        if exist_ok:
            return False
        raise Conflict(f"Conflicting resource class already exists: {name}") from None


def rename_resource_class(graph: Graph, name: str, new_name: str) -> str:
    """``PUT /resource_classes/{name}`` before 1.7: rename a custom class."""
    if name in catalog.standard_resource_classes():
        raise BadRequest(f"Cannot update standard resource class {name}")

    def work(tx: neo4j.ManagedTransaction) -> str:
        if not tx.run(CLASS_EXISTS, name=name).single()["exists"]:
            raise NotFound(f"No such resource class {name}.")
        if new_name != name and tx.run(CLASS_EXISTS, name=new_name).single()["exists"]:
            raise Conflict(f"Resource class already exists: {new_name}")
        tx.run(RENAME_CLASS, old=name, new=new_name).consume()
        return new_name

    try:
        return graph.write(work)
    except ConstraintError:
        raise Conflict(f"Resource class already exists: {new_name}") from None


def delete_resource_class(graph: Graph, name: str) -> None:
    """Delete a custom class no inventory uses (404 unknown, 400 standard, 409 in use)."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        standard = name in catalog.standard_resource_classes()
        if not standard and not tx.run(CLASS_EXISTS, name=name).single()["exists"]:
            raise NotFound(f"No such resource class {name}.")
        if standard:
            raise BadRequest(f"Error in delete resource class: Cannot delete standard resource class {name}.")
        if tx.run(CLASS_IN_USE, name=name).single()["in_use"]:
            raise Conflict(
                f"Error in delete resource class: Cannot delete resource class {name}. Class is in use in inventory."
            )
        tx.run(DELETE_CLASS, name=name).consume()

    graph.write(work)


# -- traits ------------------------------------------------------------------------------------


def list_traits(
    graph: Graph, name_in: list[str] | None = None, prefix: str | None = None, associated: bool | None = None
) -> list[str]:
    """Standard and custom traits, sorted, filtered as ``GET /traits`` filters them:
    by a list of names, by a name prefix, by whether some provider has them."""
    row = graph.read(TRAITS)[0]
    names = catalog.standard_traits() | set(row["custom"])
    if name_in is not None:
        names &= set(name_in)
    if prefix is not None:
        names = {name for name in names if name.startswith(prefix)}
    if associated is not None:
        having = set(row["associated"])
        names = {name for name in names if (name in having) == associated}
    return sorted(names)


def trait_exists(graph: Graph, name: str) -> bool:
    return name in catalog.standard_traits() or graph.read(TRAIT_STATE, name=name)[0]["custom"]


def get_trait(graph: Graph, name: str) -> str:
    """The trait's name, or 404 ``No such trait(s): NAME.``"""
    if not trait_exists(graph, name):
        raise NotFound(f"No such trait(s): {name}.")
    return name


def create_trait(graph: Graph, name: str) -> bool:
    """Make sure the custom trait ``name`` exists; True if it was created."""

    def work(tx: neo4j.ManagedTransaction) -> bool:
        if tx.run(TRAIT_STATE, name=name).single()["custom"]:
            return False
        tx.run(ENSURE_TRAIT, name=name).consume()
        return True

    try:
        return graph.write(work)
    except ConstraintError:  # created concurrently
        return False


def delete_trait(graph: Graph, name: str) -> None:
    """Delete a custom trait no provider has (404 unknown, 400 standard, 409 in use)."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        state = tx.run(TRAIT_STATE, name=name).single()
        if name in catalog.standard_traits():
            raise BadRequest(f"Cannot delete standard trait {name}.")
        if not state["custom"]:
            raise NotFound(f"No such trait(s): {name}.")
        if state["in_use"]:
            raise Conflict(in_use)
        tx.run(DELETE_TRAIT, name=name).consume()

    in_use = f"The trait {name} is in use by a resource provider."
    try:
        graph.write(work)
    except ConstraintError:  # a provider got it meanwhile: Neo4j keeps a node that has relationships
        raise Conflict(in_use) from None
