"""Allocations: claiming, replacing and releasing resources, and counting usage.

A consumer's allocations are ``CONSUMES`` relationships from the consumer to
inventories, each carrying the amount ``used``; every write also stores the
new usage on each inventory it changes (:func:`workbench.engine.usages.store_usage`).
Writes follow Placement 1.0 to 1.39 (``PUT /allocations/{consumer}``,
``POST /allocations`` and the allocation half of ``POST /reshaper``,
placement/handlers/allocation.py and placement/objects/allocation.py): the
same checks in the same order, the same texts, error codes, provider and
consumer generations. In that order:

1. each consumer's generation (:mod:`workbench.engine.consumers`), 409;
2. every provider named exists, else 400;
3. every resource class named exists, else 400;
4. per allocation, in request order: the provider has inventory of the class,
   the amount meets min_unit, max_unit and step_size, and the usage of the
   other consumers plus everything asked of that inventory fits
   ``(total - reserved) * allocation_ratio``, else 409. As in Placement, a
   write that leaves an inventory over capacity but less so than before
   (after the inventory shrank) is accepted;
5. the write: the consumers' old allocations are replaced, every provider
   that receives (or, for a consumer written empty, gives back) allocations
   and every consumer that held or receives allocations gets a new
   generation, and consumers left with nothing are deleted.

Why concurrent claims cannot overcommit: every write first takes the write
lock of each provider it touches, in a fixed (UUID) order. Only then does it
read usage and check capacity, inside the same transaction. Another claim on
the same provider waits for that lock, and then sees the committed
allocations. Quotas (:mod:`workbench.engine.quotas`) are checked in the same
transaction, under a per-project lock, so they cannot be overshot by racing
claims either.
"""

from __future__ import annotations

import collections
import contextlib
from typing import Iterable

import neo4j
import os_resource_classes

from workbench.graphdb.db import Graph, Reader
from workbench.engine import candidates as candidates_module
from workbench.engine import consumers as consumers_module
from workbench.engine import quotas, usages
from workbench.engine.consumers import UNKNOWN_TYPE
from workbench.engine.errors import CONCURRENT_UPDATE, PROVIDER_NOT_FOUND, BadRequest, Conflict, NotFound
from workbench.engine.providers import LOCK_PROVIDERS, unknown_resource_classes
from workbench.ids import normalise_uuid

Allocations = dict[str, dict[str, int]]  # provider uuid -> resource class -> amount

# Placement words a resource class that does not exist differently per operation.
UNKNOWN_CLASS = {
    "put": "Unable to allocate inventory for consumer {consumer}: No such resource class {name}.",
    "post": "Unable to allocate inventory No such resource class {name}.",
    "reshape": "malformed reshaper data: No such resource class {name}.",
}

BUMP_PROVIDERS = """
// Placement's signal that a provider's usage changed.
UNWIND $uuids AS uuid
MATCH (rp:Provider {uuid: uuid})
SET rp.generation = rp.generation + 1
"""

NAMED_PROVIDERS = """
// The providers a key may mean: the one with that UUID, the one with that name
// (two when a provider is named with another's UUID).
MATCH (rp:Provider) WHERE rp.uuid = $uuid OR rp.name = $key
RETURN rp.uuid AS uuid, rp.name AS name, rp.uuid = $uuid AS by_uuid
"""

SUBTREE = """
// A provider and (with $subtree) every provider below it.
MATCH (top:Provider {uuid: $top})-[:PARENT_OF*0..]->(rp:Provider)
WHERE $subtree OR rp = top
RETURN top.uuid AS top, top.name AS top_name, rp.uuid AS uuid
"""

FREE_INVENTORY = """
// What is still free in each inventory of these providers, and who holds the rest.
UNWIND $uuids AS uuid
MATCH (rp:Provider {uuid: uuid})-[:HAS_INVENTORY]->(inv:Inventory)
CALL (inv) {
  OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(holder:Consumer)
  RETURN coalesce(sum(allocation.used), 0) AS used, collect(DISTINCT holder.uuid) AS holders
}
RETURN rp.uuid AS provider, rp.name AS name, inv.resource_class AS resource_class, holders,
       toInteger((inv.total - inv.reserved) * inv.allocation_ratio) - used AS free
ORDER BY provider, resource_class
"""

INVENTORY_STATE = """
// The inventories of these classes on these providers: limits, and usage
// counted twice: without the consumers being rewritten (their allocations are
// replaced) and with them (what was there before the write).
UNWIND $providers AS uuid
MATCH (rp:Provider {uuid: uuid})-[:HAS_INVENTORY]->(inv:Inventory)
WHERE inv.resource_class IN $classes
CALL (inv) {
  OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(holder:Consumer)
  RETURN coalesce(sum(CASE WHEN holder.uuid IN $consumers THEN 0 ELSE allocation.used END), 0) AS used,
         count(allocation) AS allocations, coalesce(sum(allocation.used), 0) AS previous
}
RETURN rp.uuid AS provider, inv.resource_class AS resource_class, inv.total AS total,
       inv.reserved AS reserved, inv.allocation_ratio AS allocation_ratio, inv.min_unit AS min_unit,
       inv.max_unit AS max_unit, inv.step_size AS step_size, used,
       CASE WHEN allocations > 0 THEN previous END AS previous
"""

CURRENT_ALLOCATIONS = """
// What these consumers hold now.
UNWIND $uuids AS uuid
MATCH (:Consumer {uuid: uuid})-[a:CONSUMES]->(inv:Inventory)<-[:HAS_INVENTORY]-(rp:Provider)
RETURN uuid AS consumer, rp.uuid AS provider, inv.resource_class AS resource_class, a.used AS used
"""

REPLACE_ALLOCATIONS = """
// Drop the consumer's old allocations and write the new ones.
MATCH (c:Consumer {uuid: $uuid})
CALL (c) {
  MATCH (c)-[old:CONSUMES]->()
  DELETE old
}
WITH c
UNWIND $allocations AS a
MATCH (:Provider {uuid: a.provider})-[:HAS_INVENTORY]->(inv:Inventory {resource_class: a.resource_class})
CREATE (c)-[:CONSUMES {used: a.used}]->(inv)
"""

DELETE_CONSUMER = """
MATCH (c:Consumer {uuid: $uuid})
DETACH DELETE c
"""

GET_ALLOCATIONS = """
MATCH (c:Consumer {uuid: $uuid})-[a:CONSUMES]->(inv:Inventory)<-[:HAS_INVENTORY]-(rp:Provider)
RETURN rp.uuid AS provider, rp.generation AS generation, inv.resource_class AS resource_class, a.used AS used,
       c.generation AS consumer_generation, c.project_id AS project_id, c.user_id AS user_id,
       coalesce(c.consumer_type, $unknown) AS consumer_type
"""

PROVIDER_ALLOCATIONS = """
// GET /resource_providers/{uuid}/allocations: who holds what of this provider.
MATCH (rp:Provider {uuid: $uuid})
OPTIONAL MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)<-[a:CONSUMES]-(c:Consumer)
RETURN rp.generation AS generation, c.uuid AS consumer, c.generation AS consumer_generation,
       inv.resource_class AS resource_class, a.used AS used
"""

# -- writing --------------------------------------------------------------------------------


def set_allocations(
    graph: Graph,
    consumer_uuid: str,
    allocations: Allocations,
    project: str,
    user: str,
    consumer_type: str | None = "INSTANCE",
    consumer_generation=None,
) -> None:
    """``PUT /allocations/{consumer}``: replace a consumer's allocations (empty: release them).

    ``consumer_generation``: None for a consumer expected to be new, its
    current generation otherwise, or :data:`workbench.engine.consumers.UNCHECKED`
    (before 1.28).
    ``consumer_type`` None keeps the consumer's type (before 1.38).
    """
    body = {
        "allocations": allocations,
        "project_id": project,
        "user_id": user,
        "consumer_type": consumer_type,
        "consumer_generation": consumer_generation,
    }
    write_allocations(graph, {consumer_uuid: body}, wording="put")


def write_allocations(graph: Graph, consumers: dict[str, dict], wording: str = "post") -> None:
    """``POST /allocations``: several consumers' allocations, all or nothing.

    ``consumers``: consumer uuid -> {allocations, project_id, user_id,
    consumer_type, consumer_generation}, in request order (it decides which
    error is reported first). ``wording`` is the operation whose texts the
    errors use: "put", "post" or "reshape".
    """
    consumers = prepare(consumers)

    def work(tx: neo4j.ManagedTransaction) -> None:
        locked = lock_providers(tx, consumers)
        check_consumers(tx, consumers)
        check_providers_exist(consumers, locked)
        replace(tx, consumers, wording)

    graph.write(work)


def prepare(consumers: dict[str, dict]) -> dict[str, dict]:
    """Consumer and provider UUIDs made canonical, amounts checked to be integers >= 1."""
    prepared = {}
    for uuid, body in consumers.items():
        key = _consumer_uuid(uuid)
        prepared[key] = dict(body, allocations=_validated(key, body.get("allocations") or {}))
    return prepared


def lock_providers(tx: neo4j.ManagedTransaction, consumers: dict[str, dict], also: Iterable[str] = ()) -> dict:
    """Lock every provider the write touches (named, or now holding the
    consumers' allocations, plus ``also``), in UUID order so that two writers
    never wait on each other crosswise. Returns uuid -> generation of those
    that exist."""
    touched = set(also) | {rp for body in consumers.values() for rp in body["allocations"]}
    touched |= {r["provider"] for r in tx.run(CURRENT_ALLOCATIONS, uuids=list(consumers)).data()}
    rows = tx.run(LOCK_PROVIDERS, uuids=sorted(touched)).data()
    return {r["uuid"]: r["generation"] for r in rows}


def check_consumers(tx: neo4j.ManagedTransaction, consumers: dict[str, dict]) -> None:
    """Lock (or create) each consumer and check its generation, in request order."""
    for uuid, body in consumers.items():
        consumers_module.check_generation(tx, uuid, body.get("consumer_generation"))


def check_providers_exist(consumers: dict[str, dict], locked: dict) -> None:
    for body in consumers.values():
        for rp in body["allocations"]:
            if rp not in locked:
                raise BadRequest(f"Allocation for resource provider '{rp}' that does not exist.")


def replace(tx: neo4j.ManagedTransaction, consumers: dict[str, dict], wording: str, enforce_units: bool = True):
    """With providers and consumers locked: classes, capacity and quota, then the write."""
    held = collections.defaultdict(dict)
    for row in tx.run(CURRENT_ALLOCATIONS, uuids=list(consumers)).data():
        held[row["consumer"]].setdefault(row["provider"], {})[row["resource_class"]] = row["used"]
    # Placement's list of allocation records: a consumer written empty gives
    # back what it holds, as records of amount 0.
    records = [
        (uuid, rp, rc, amount)
        for uuid, body in consumers.items()
        for rp, resources in (body["allocations"] or _zeroed(held.get(uuid, {}))).items()
        for rc, amount in resources.items()
    ]
    classes = list(dict.fromkeys(rc for _, _, rc, _ in records))
    if unknown := unknown_resource_classes(Reader(tx), classes):
        uuid = next(uuid for uuid, _, rc, _ in records if rc == unknown[0])
        raise BadRequest(UNKNOWN_CLASS[wording].format(consumer=uuid, name=unknown[0]))
    _check_capacity(tx, records, sorted(consumers), enforce_units)
    quotas.check_in_transaction(tx, consumers)
    for uuid, body in consumers.items():
        consumers_module.set_attributes(tx, uuid, body["project_id"], body["user_id"], body.get("consumer_type"))
        if body["allocations"] or uuid in held:
            tx.run(REPLACE_ALLOCATIONS, uuid=uuid, allocations=_rows(body["allocations"])).consume()
    given_back = {(rp, rc) for resources in held.values() for rp, classes in resources.items() for rc in classes}
    usages.store_usage(tx, given_back | {(rp, rc) for _, rp, rc, _ in records})
    tx.run(BUMP_PROVIDERS, uuids=sorted({rp for _, rp, _, _ in records})).consume()
    visited = sorted({uuid for uuid, _, _, _ in records})
    consumers_module.bump_generations(tx, visited)
    consumers_module.delete_if_empty(tx, visited)


def claim_whole_provider(
    graph: Graph,
    provider: str,
    consumer_uuid: str,
    project: str,
    user: str,
    consumer_type: str = "INSTANCE",
    subtree: bool = False,
    generation: int | None = None,
) -> Allocations:
    """Allocate *all* of a provider's remaining inventory to one new consumer.

    Ironic's standalone case (Denver PTG 2019): a request may ask for less
    than a node has, but nothing else may be placed on it. Every class the
    provider (with ``subtree``, every provider below it too) still has free is
    taken. Refused if anyone else holds part of it, if ``generation`` is given
    and the provider changed since, or if nothing is free (e.g. a node parked
    with reserved == total). Quota applies to what is actually taken.
    Releasing the consumer gives it all back.
    """
    consumer = _consumer_uuid(consumer_uuid)
    quotas.check_owner(project, user, consumer_type)
    taken: Allocations = {}

    def work(tx: neo4j.ManagedTransaction) -> None:
        rows = tx.run(SUBTREE, top=_one_provider(tx, provider), subtree=subtree).data()
        top = rows[0]
        uuids = sorted(r["uuid"] for r in rows)
        locked = {r["uuid"]: r["generation"] for r in tx.run(LOCK_PROVIDERS, uuids=uuids).data()}
        if generation is not None and locked[top["top"]] != generation:
            raise Conflict(
                f"resource provider {top['top_name']} changed: generation {locked[top['top']]}, "
                f"expected {generation}",
                CONCURRENT_UPDATE,
            )
        taken.clear()
        for row in tx.run(FREE_INVENTORY, uuids=sorted(locked)).data():
            if others := sorted(set(row["holders"]) - {consumer}):
                raise Conflict(
                    f"{row['name']} is already in use by consumer(s) {', '.join(others)}: "
                    "a whole provider can only be claimed while nobody else holds any of it"
                )
            if row["free"] > 0:
                # An allocation_ratio near Placement's maximum (3.4e38) makes "free" astronomic:
                # take no more than one allocation can hold (as max_unit, 2147483647).
                taken.setdefault(row["provider"], {})[row["resource_class"]] = min(row["free"], LARGEST_ALLOCATION)
        if not taken:
            raise Conflict(f"nothing is free on {top['top_name']} (is it parked with reserved == total?)")
        body = {
            "allocations": taken,
            "project_id": project,
            "user_id": user,
            "consumer_type": consumer_type,
            "consumer_generation": None,
        }
        with _new_consumer(consumer):
            check_consumers(tx, {consumer: body})
        # Taking what is free may break max_unit or step_size: whole nodes are the point.
        replace(tx, {consumer: body}, "put", enforce_units=False)

    graph.write(work)
    return taken


def delete_allocations(graph: Graph, consumer_uuid: str) -> None:
    """``DELETE /allocations/{consumer}``: release everything the consumer holds.

    As in Placement, neither provider nor consumer generations change, and a
    consumer holding nothing (or not a UUID at all) is a 404.
    """
    uuid = normalise_uuid(consumer_uuid) or consumer_uuid

    def work(tx: neo4j.ManagedTransaction) -> None:
        # Giving back needs no provider lock: it can only make room.
        held = tx.run(CURRENT_ALLOCATIONS, uuids=[uuid]).data()
        if not held:
            raise NotFound(f"No allocations for consumer '{consumer_uuid}'")
        tx.run(DELETE_CONSUMER, uuid=uuid).consume()
        usages.store_usage(tx, ((row["provider"], row["resource_class"]) for row in held))

    graph.write(work)


# -- reading --------------------------------------------------------------------------------


def get_allocations(graph: Graph, consumer_uuid: str) -> dict:
    """``GET /allocations/{consumer}`` (1.38 shape; a consumer without a type is ``unknown``).

    A consumer holding nothing, or a path that is not a UUID, has
    ``{"allocations": {}}``, as in Placement."""
    uuid = normalise_uuid(consumer_uuid)
    rows = graph.read(GET_ALLOCATIONS, uuid=uuid, unknown=UNKNOWN_TYPE) if uuid else []
    if not rows:
        return {"allocations": {}}
    body: dict = {"allocations": {}}
    for row in rows:
        entry = body["allocations"].setdefault(row["provider"], {"resources": {}, "generation": row["generation"]})
        entry["resources"][row["resource_class"]] = row["used"]
    first = rows[0]
    body.update(
        consumer_generation=first["consumer_generation"],
        project_id=first["project_id"],
        user_id=first["user_id"],
        consumer_type=first["consumer_type"],
    )
    return body


def provider_allocations(graph: Graph, provider_uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/allocations`` (1.28 shape, with consumer generations)."""
    rows = graph.read(PROVIDER_ALLOCATIONS, uuid=normalise_uuid(provider_uuid) or provider_uuid)
    if not rows:
        raise NotFound(
            f"Resource provider '{provider_uuid}' not found: No resource provider with uuid {provider_uuid} found"
        )
    held: dict[str, dict] = {}
    for row in rows:
        if row["consumer"] is not None:
            entry = held.setdefault(row["consumer"], {"resources": {}})
            entry["resources"][row["resource_class"]] = row["used"]
            entry["consumer_generation"] = row["consumer_generation"]
    return {"resource_provider_generation": rows[0]["generation"], "allocations": held}


def claim(
    graph: Graph,
    consumer_uuid: str,
    query: str,
    project: str,
    user: str,
    consumer_type: str = "INSTANCE",
    pick: int = 0,
) -> dict:
    """Find candidates for ``query`` and claim candidate number ``pick`` for a new consumer.

    The candidate is re-checked against capacity inside the write transaction:
    if someone else took the room meanwhile, the claim fails with a conflict.
    """
    quotas.check_owner(project, user, consumer_type)
    body = candidates_module.find(graph, query)
    found = body["allocation_requests"]
    if not found:
        raise Conflict(f"No allocation candidates for {query!r}: nothing to claim")
    if not 0 <= pick < len(found):
        raise BadRequest(f"--pick {pick} is out of range: there are {len(found)} candidates (0 to {len(found) - 1})")
    chosen = {rp: dict(v["resources"]) for rp, v in found[pick]["allocations"].items()}
    with _new_consumer(_consumer_uuid(consumer_uuid)):
        set_allocations(graph, consumer_uuid, chosen, project, user, consumer_type, None)
    return chosen


# -- the claim commands' own checks ---------------------------------------------------------

LARGEST_ALLOCATION = 2147483647  # Placement's largest max_unit; its allocations column is 32-bit


def _one_provider(tx: neo4j.ManagedTransaction, key: str) -> str:
    """The UUID of the one provider ``key`` names: by UUID, else by name; refused
    when it is one provider's UUID and another's name."""
    rows = tx.run(NAMED_PROVIDERS, key=key, uuid=normalise_uuid(key)).data()
    if not rows:
        raise NotFound(f"No resource provider '{key}'", PROVIDER_NOT_FOUND)
    if len(rows) > 1:
        by_uuid = next(r for r in rows if r["by_uuid"])
        by_name = next(r for r in rows if not r["by_uuid"])
        raise BadRequest(
            f"'{key}' is ambiguous: it is the UUID of provider {by_uuid['name']!r} and the name of provider "
            f"{by_name['uuid']}; name the one you mean by {by_uuid['name']!r} or by {by_name['uuid']}"
        )
    return rows[0]["uuid"]


@contextlib.contextmanager
def _new_consumer(uuid: str):
    """A claim is for a new consumer: say so, rather than report a generation conflict."""
    try:
        yield
    except Conflict as error:
        if error.code != CONCURRENT_UPDATE or not error.detail.startswith("consumer generation conflict"):
            raise
        raise Conflict(
            f"consumer {uuid} already has allocations; a claim is for a new consumer: release them first "
            f"(`workbench release {uuid}`), or replace them with PUT /allocations/{uuid} and the consumer's "
            "generation",
            CONCURRENT_UPDATE,
        ) from None


# -- checks inside the transaction ---------------------------------------------------------


def _check_capacity(
    tx: neo4j.ManagedTransaction, records: list[tuple], consumers: list[str], enforce_units: bool
) -> None:
    """Placement's checks of allocation records (consumer, provider, class, amount), in order."""
    if not records:
        return
    providers = list(dict.fromkeys(rp for _, rp, _, _ in records))
    classes = sorted({rc for _, _, rc, _ in records}, key=class_order)
    state = {
        (r["provider"], r["resource_class"]): r
        for r in tx.run(INVENTORY_STATE, providers=providers, classes=classes, consumers=consumers).data()
    }
    # A provider with no inventory of any class asked of the write is named first.
    if missing := [rp for rp in providers if not any((rp, rc) in state for rc in classes)]:
        raise _invalid(", ".join(classes), ", ".join(missing))
    asked: dict[tuple[str, str], int] = collections.Counter()
    for _, rp, rc, amount in records:
        asked[rp, rc] += amount
        if amount == 0:
            continue
        inventory = state.get((rp, rc))
        if inventory is None:
            raise _invalid(rc, rp)
        if enforce_units and (
            not inventory["min_unit"] <= amount <= inventory["max_unit"] or amount % inventory["step_size"]
        ):
            raise Conflict(
                f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                f"'{rp}'. The requested amount would violate inventory constraints."
            )
        capacity = (inventory["total"] - inventory["reserved"]) * inventory["allocation_ratio"]
        used, previous = inventory["used"], inventory["previous"]
        if capacity < used + amount or capacity < used + asked[rp, rc]:
            # Still over capacity, but less than before the write: allowed.
            if previous is not None and used + asked[rp, rc] <= previous:
                continue
            raise Conflict(
                f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                f"'{rp}'. The requested amount would exceed the capacity."
            )


def class_order(name: str) -> tuple:
    """Placement lists classes in the order of their database ids: the
    standard ones in os-resource-classes' order, then the custom ones (here by name)."""
    try:
        return 0, os_resource_classes.STANDARDS.index(name), ""
    except ValueError:
        return 1, 0, name


def _invalid(resource_class: str, provider: str) -> Conflict:
    return Conflict(
        f"Unable to allocate inventory: Inventory for '{resource_class}' on resource provider '{provider}' invalid."
    )


def _zeroed(held: Allocations) -> Allocations:
    return {rp: dict.fromkeys(resources, 0) for rp, resources in held.items()}


def _rows(allocations: Allocations) -> list[dict]:
    return [
        {"provider": rp, "resource_class": rc, "used": n}
        for rp, resources in allocations.items()
        for rc, n in resources.items()
    ]


def _validated(consumer: str, allocations: Allocations) -> Allocations:
    clean: Allocations = {}
    for rp, resources in allocations.items():
        uuid = normalise_uuid(rp)
        if uuid is None:
            raise BadRequest(f"Allocations for consumer {consumer}: '{rp}' is not a resource provider UUID")
        for rc, amount in resources.items():
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
                raise BadRequest(
                    f"Allocations for consumer {consumer}: {rc} on {uuid} must be an integer >= 1, got {amount!r}"
                )
        clean[uuid] = dict(resources)
    return clean


def _consumer_uuid(value: str) -> str:
    uuid = normalise_uuid(value)
    if uuid is None:
        raise BadRequest(f"Malformed consumer_uuid: {value}")
    return uuid
