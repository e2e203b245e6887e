"""Inventories: what a provider offers, per resource class, with Placement's rules.

An inventory is an ``Inventory`` node under its provider (``HAS_INVENTORY``);
allocations point at it (``CONSUMES``), so usage is always the sum of those.
Writes follow Placement 1.39 (``PUT``/``POST``/``DELETE`` on
``/resource_providers/{uuid}/inventories[/{rc}]`` and ``PUT
/resource_classes/{name}``): the same schema bounds and defaults, the same
checks in the same order, the same status codes and error codes.

The rules worth knowing:

* ``capacity = int((total - reserved) * allocation_ratio)`` must not be
  negative: since 1.26 ``reserved`` may equal ``total`` but not exceed it
  (the writes take ``reserved_can_be_total=False`` for the older rule).
* ``min_unit``, ``max_unit`` and ``step_size`` only bound each allocation;
  Placement does not check them against each other (``min_unit`` 3 with
  ``max_unit`` 1 is accepted).
* Shrinking an inventory below what is already allocated is allowed (the
  provider is then over capacity until allocations are released); removing
  a resource class that has allocations is refused.
* Every write changes the provider's generation, and ``PUT`` needs the
  current one (409 ``placement.concurrent_update`` otherwise).

Concurrency: each write takes the provider's write lock before it reads the
generation, the inventories or the usage, inside one transaction, like the
allocation writes in :mod:`workbench.engine.allocations`; a concurrent claim
or inventory change on the same provider waits and then sees the result.
"""

from __future__ import annotations

import math
import re
from typing import Any

import neo4j
import os_resource_classes
from neo4j.exceptions import ConstraintError

from workbench.graphdb.db import Graph, Reader
from workbench.engine.errors import CONCURRENT_UPDATE, INVENTORY_INUSE, BadRequest, Conflict, NotFound
from workbench.engine.providers import (
    _check_generation_type,
    _is_int,
    _path_uuid,
    bump_generation,
    lock_provider,
    unknown_resource_classes,
)
from workbench.scenario import INVENTORY_DEFAULTS, MAX_INT

# Placement's schema bounds (placement/schemas/inventory.py, placement/db/constants.py).
RC_PATTERN = re.compile(r"^[A-Z0-9_]+$")
CUSTOM_RC_PATTERN = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
MAX_RC_LENGTH = 255
SQL_SP_FLOAT_MAX = 3.40282e38
INTEGER_MINIMUM = {"total": 1, "reserved": 0, "min_unit": 1, "max_unit": 1, "step_size": 1}
FIELDS = ("total", "reserved", "min_unit", "max_unit", "step_size", "allocation_ratio")

PROVIDER_INVENTORIES = """
MATCH (rp:Provider {uuid: $uuid})
RETURN rp.generation AS generation,
       COLLECT { MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
                 RETURN inv {.*} ORDER BY inv.resource_class } AS inventories
"""

CLASSES_IN_USE = """
// Which of these inventories have allocations against them.
MATCH (:Provider {uuid: $uuid})-[:HAS_INVENTORY]->(inv:Inventory)
WHERE inv.resource_class IN $classes AND EXISTS { (inv)<-[:CONSUMES]-(:Consumer) }
RETURN inv.resource_class AS resource_class
"""

DELETE_INVENTORIES = """
MATCH (:Provider {uuid: $uuid})-[:HAS_INVENTORY]->(inv:Inventory)
WHERE inv.resource_class IN $classes
DETACH DELETE inv
"""

UPSERT_INVENTORIES = """
// Update in place (the node keeps its allocations) or create.
MATCH (rp:Provider {uuid: $uuid})
UNWIND $inventories AS i
MERGE (rp)-[:HAS_INVENTORY]->(inv:Inventory {resource_class: i.resource_class})
ON CREATE SET inv.used = 0
SET inv.total = i.total, inv.reserved = i.reserved, inv.min_unit = i.min_unit,
    inv.max_unit = i.max_unit, inv.step_size = i.step_size, inv.allocation_ratio = i.allocation_ratio
"""

RESOURCE_CLASS_EXISTS = """
RETURN EXISTS { MATCH (:ResourceClass {name: $name}) } AS exists
"""

CREATE_RESOURCE_CLASS = """
CREATE (:ResourceClass {name: $name})
"""


# -- reading -------------------------------------------------------------------------------


def get_inventories(graph: Graph, uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/inventories``:
    ``{"resource_provider_generation": n, "inventories": {rc: {total, reserved, ...}}}``."""
    rows = graph.read(PROVIDER_INVENTORIES, uuid=_path_uuid(uuid))
    if not rows:
        raise NotFound(f"No resource provider with uuid {uuid} found")
    return {
        "resource_provider_generation": rows[0]["generation"],
        "inventories": {inv["resource_class"]: _shape(inv) for inv in rows[0]["inventories"]},
    }


def get_inventory(graph: Graph, uuid: str, resource_class: str) -> dict:
    """``GET /resource_providers/{uuid}/inventories/{rc}``: the fields and ``resource_provider_generation``."""
    body = get_inventories(graph, uuid)
    if resource_class not in body["inventories"]:
        raise NotFound(f"No inventory of class {resource_class} for {uuid}")
    return {**body["inventories"][resource_class], "resource_provider_generation": body["resource_provider_generation"]}


# -- writing -------------------------------------------------------------------------------


def set_inventories(
    graph: Graph, uuid: str, inventories: dict[str, dict], generation: int, reserved_can_be_total: bool = True
) -> dict:
    """``PUT /resource_providers/{uuid}/inventories``: replace the provider's whole inventory.

    ``inventories`` maps resource class to fields; only ``total`` is required
    (defaults: reserved 0, min_unit 1, max_unit 2147483647, step_size 1,
    allocation_ratio 1.0). Classes left out are removed, which is refused
    (409 ``placement.inventory.inuse``) for a class with allocations.
    Returns the new inventories in the ``GET`` shape.
    """
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        # Placement's order: provider (404), body (400), generation (409),
        # capacity (400), resource classes (400), classes in use (409).
        current = lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        _check_generation_type(generation)
        if not isinstance(inventories, dict):
            raise BadRequest(f"JSON does not validate: {inventories!r} is not of type 'object'")
        # Like Placement's schema (patternProperties), only well-formed class
        # names have their fields checked; the others are unknown classes below.
        records = {rc: _record(fields) for rc, fields in inventories.items() if _well_formed(rc)}
        if generation != current:
            raise Conflict("resource provider generation conflict", CONCURRENT_UPDATE)
        for rc, record in records.items():
            _check_capacity(rc, record, rp_uuid, "update", reserved_can_be_total)
        if unknown := _unknown_classes(tx, list(inventories)):
            raise BadRequest(
                f"Unknown resource class in inventory for resource provider {rp_uuid}: "
                f"No such resource class {unknown[0]}."
            )
        existing = set(_current(tx, rp_uuid))
        removed = sorted(existing - set(records))
        if in_use := _in_use(tx, rp_uuid, removed):
            raise Conflict(
                f"update conflict: Inventory for '{', '.join(in_use)}' on resource provider '{rp_uuid}' in use.",
                INVENTORY_INUSE,
            )
        tx.run(DELETE_INVENTORIES, uuid=rp_uuid, classes=removed).consume()
        _upsert(tx, rp_uuid, records)
        return {
            "resource_provider_generation": bump_generation(tx, rp_uuid),
            "inventories": {rc: _shape(record) for rc, record in records.items()},
        }

    return graph.write(work)


def set_inventory(
    graph: Graph, uuid: str, resource_class: str, fields: dict, generation: int, reserved_can_be_total: bool = True
) -> dict:
    """``PUT /resource_providers/{uuid}/inventories/{rc}``: change one existing inventory.

    As in Placement this only updates: a class the provider has no inventory
    of is a 400 (add it with :func:`add_inventory` or :func:`set_inventories`),
    and a class that does not exist at all is a 404. Returns the inventory
    with the new ``resource_provider_generation``.
    """
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        current = lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        record = _record(fields)
        _check_generation_type(generation)
        if generation != current:
            raise Conflict("resource provider generation conflict", CONCURRENT_UPDATE)
        _check_capacity(resource_class, record, rp_uuid, "update", reserved_can_be_total)
        if _unknown_classes(tx, [resource_class]):
            raise NotFound(f"No such resource class {resource_class}.")
        if resource_class not in _current(tx, rp_uuid):
            raise BadRequest(
                f"No inventory record with resource class for resource provider {rp_uuid}: "
                f"No inventory of class {resource_class} found."
            )
        _upsert(tx, rp_uuid, {resource_class: record})
        return {**_shape(record), "resource_provider_generation": bump_generation(tx, rp_uuid)}

    return graph.write(work)


def add_inventory(
    graph: Graph, uuid: str, resource_class: str, fields: dict, reserved_can_be_total: bool = True
) -> dict:
    """``POST /resource_providers/{uuid}/inventories``: add one inventory the provider lacks.

    Placement's POST takes no generation. An inventory of that class already
    there is a 409 ``placement.concurrent_update``; an unknown class a 400.
    """
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> dict:
        lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        if not isinstance(resource_class, str) or not _well_formed(resource_class):
            raise BadRequest(f"JSON does not validate: {resource_class!r} does not match '{RC_PATTERN.pattern}'")
        record = _record(fields)
        _check_capacity(resource_class, record, rp_uuid, "create", reserved_can_be_total)
        if _unknown_classes(tx, [resource_class]):
            raise BadRequest(
                f"Unable to create inventory for resource provider {rp_uuid}: "
                f"No such resource class {resource_class}."
            )
        if resource_class in _current(tx, rp_uuid):
            raise Conflict(
                f"Update conflict: inventory of {resource_class} already exists on resource provider {rp_uuid}",
                CONCURRENT_UPDATE,
            )
        _upsert(tx, rp_uuid, {resource_class: record})
        return {**_shape(record), "resource_provider_generation": bump_generation(tx, rp_uuid)}

    return graph.write(work)


def delete_inventory(graph: Graph, uuid: str, resource_class: str, generation: int | None = None) -> None:
    """``DELETE /resource_providers/{uuid}/inventories/{rc}``: remove one inventory.

    Refused (409) while it has allocations. Placement answers that with the
    code ``placement.concurrent_update`` (not ``placement.inventory.inuse``,
    which its ``PUT .../inventories`` uses), and so does this. Placement's
    DELETE takes no generation; here ``generation``, if given, must be the
    current one.
    """
    rp_uuid = _path_uuid(uuid)
    if generation is not None:
        _check_generation_type(generation)

    def work(tx: neo4j.ManagedTransaction) -> None:
        current = lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        if generation is not None and generation != current:
            raise Conflict("resource provider generation conflict", CONCURRENT_UPDATE)
        if _unknown_classes(tx, [resource_class]):
            raise NotFound(
                f"No inventory of class {resource_class} found for delete: No such resource class {resource_class}."
            )
        if _in_use(tx, rp_uuid, [resource_class]):
            raise Conflict(
                f"Unable to delete inventory of class {resource_class}: Inventory for '{resource_class}' "
                f"on resource provider '{rp_uuid}' in use.",
                CONCURRENT_UPDATE,
            )
        if resource_class not in _current(tx, rp_uuid):
            message = f"No inventory of class {resource_class} found for delete"
            raise NotFound(f"{message}: {message}")
        tx.run(DELETE_INVENTORIES, uuid=rp_uuid, classes=[resource_class]).consume()
        bump_generation(tx, rp_uuid)

    graph.write(work)


def delete_inventories(graph: Graph, uuid: str) -> None:
    """``DELETE /resource_providers/{uuid}/inventories`` (1.5+): remove every inventory.

    Placement takes no generation here, but bumps it. Refused (409
    ``placement.inventory.inuse``) if any inventory has allocations.
    """
    rp_uuid = _path_uuid(uuid)

    def work(tx: neo4j.ManagedTransaction) -> None:
        lock_provider(tx, rp_uuid, f"No resource provider with uuid {uuid} found")
        classes = sorted(_current(tx, rp_uuid))
        if in_use := _in_use(tx, rp_uuid, classes):
            raise Conflict(
                f"Inventory for '{', '.join(in_use)}' on resource provider '{rp_uuid}' in use.", INVENTORY_INUSE
            )
        tx.run(DELETE_INVENTORIES, uuid=rp_uuid, classes=classes).consume()
        bump_generation(tx, rp_uuid)

    graph.write(work)


def create_resource_class(graph: Graph, name: str) -> bool:
    """``PUT /resource_classes/{name}`` (1.7+): make sure a custom class exists.

    The name must match ``CUSTOM_[A-Z0-9_]+`` (400 otherwise, standard names
    included). Returns True if it was created (Placement's 201), False if it
    already existed (204).
    """
    if not isinstance(name, str) or not CUSTOM_RC_PATTERN.match(name) or len(name) > MAX_RC_LENGTH:
        raise BadRequest(f"JSON does not validate: {name!r} does not match '{CUSTOM_RC_PATTERN.pattern}'")

    def work(tx: neo4j.ManagedTransaction) -> bool:
        if tx.run(RESOURCE_CLASS_EXISTS, name=name).single()["exists"]:
            return False
        tx.run(CREATE_RESOURCE_CLASS, name=name).consume()
        return True

    try:
        return graph.write(work)
    except ConstraintError:  # created concurrently: it exists, as wanted
        return False


# -- checks and helpers ---------------------------------------------------------------------


def _well_formed(resource_class: Any) -> bool:
    return isinstance(resource_class, str) and bool(RC_PATTERN.match(resource_class))


def _record(fields: Any) -> dict:
    """One inventory's fields checked against Placement's schema, defaults filled in."""
    if not isinstance(fields, dict):
        raise BadRequest(f"JSON does not validate: {fields!r} is not of type 'object'")
    # Placement's schema also allows resource_provider_generation in a record; it is ignored.
    if extra := sorted(set(fields) - set(FIELDS) - {"resource_provider_generation"}):
        raise BadRequest(f"JSON does not validate: Additional properties are not allowed ({extra[0]!r} was unexpected)")
    if "total" not in fields:
        raise BadRequest("JSON does not validate: 'total' is a required property")
    record = {**INVENTORY_DEFAULTS, **{k: v for k, v in fields.items() if k in FIELDS}}
    for field, minimum in INTEGER_MINIMUM.items():
        value = record[field]
        if not _is_int(value):
            raise BadRequest(f"JSON does not validate: {value!r} is not of type 'integer' ({field})")
        if not minimum <= value <= MAX_INT:
            raise BadRequest(
                f"JSON does not validate: {field} {value!r} is outside Placement's bounds {minimum} to {MAX_INT}"
            )
        record[field] = int(value)
    if "resource_provider_generation" in fields:
        _check_generation_type(fields["resource_provider_generation"])
    ratio = record["allocation_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
        raise BadRequest(f"JSON does not validate: {ratio!r} is not of type 'number' (allocation_ratio)")
    if ratio > SQL_SP_FLOAT_MAX:
        raise BadRequest(f"JSON does not validate: {ratio!r} is greater than the maximum of {SQL_SP_FLOAT_MAX}")
    record["allocation_ratio"] = float(ratio)
    return record


def _check_capacity(resource_class: str, record: dict, rp_uuid: str, action: str, reserved_can_be_total: bool) -> None:
    """Capacity may be 0 (reserved == total) from Placement 1.26 on, never negative; before 1.26 it must be > 0."""
    capacity = int((record["total"] - record["reserved"]) * record["allocation_ratio"])
    if capacity < 0 or (capacity == 0 and not reserved_can_be_total):
        limit = "greater than total" if reserved_can_be_total else "greater than or equal to total"
        raise BadRequest(
            f"Unable to {action} inventory for resource provider {rp_uuid}: Invalid inventory for "
            f"'{resource_class}' on resource provider '{rp_uuid}'. The reserved value is {limit}."
        )


def _unknown_classes(tx: neo4j.ManagedTransaction, names: list) -> list[str]:
    return unknown_resource_classes(Reader(tx), names)


def _current(tx: neo4j.ManagedTransaction, rp_uuid: str) -> dict[str, dict]:
    row = tx.run(PROVIDER_INVENTORIES, uuid=rp_uuid).single()
    return {inv["resource_class"]: inv for inv in row["inventories"]}


def _in_use(tx: neo4j.ManagedTransaction, rp_uuid: str, classes: list[str]) -> list[str]:
    """Those of ``classes`` with allocations, in Placement's order (its messages list them so)."""
    if not classes:
        return []
    found = [r["resource_class"] for r in tx.run(CLASSES_IN_USE, uuid=rp_uuid, classes=classes).data()]
    return sorted(found, key=_class_id_order)


def _class_id_order(resource_class: str) -> tuple[int, str]:
    """Placement numbers the standard classes in os-resource-classes' order and
    custom ones after them (in order of creation, which the graph does not
    keep: by name here)."""
    try:
        return os_resource_classes.STANDARDS.index(resource_class), ""
    except ValueError:
        return len(os_resource_classes.STANDARDS), resource_class


def _upsert(tx: neo4j.ManagedTransaction, rp_uuid: str, records: dict[str, dict]) -> None:
    if records:
        rows = [{"resource_class": rc, **record} for rc, record in records.items()]
        tx.run(UPSERT_INVENTORIES, uuid=rp_uuid, inventories=rows).consume()


def _shape(inv: dict) -> dict:
    return {field: inv[field] for field in FIELDS}
