"""Allocations: claiming, replacing and releasing resources, and counting usage.

A consumer's allocations are ``CONSUMES`` relationships from the consumer to
inventories, each carrying the amount ``used``. Writes follow Placement 1.38
(``PUT /allocations/{consumer}``, ``POST /allocations``), with its consumer
generations and error codes.

Why concurrent claims cannot overcommit: every write first takes the write
lock of each provider it touches, in a fixed (UUID) order, by bumping the
provider's generation as Placement does. Only then does it read usage and
check capacity, inside the same transaction. Another claim on the same
provider waits for that lock, and then sees the committed allocations. Quotas
(:mod:`workbench.engine.quotas`) are checked in the same transaction, under a
per-project lock, so they cannot be overshot by racing claims either.
"""

from __future__ import annotations

import collections
import neo4j

from workbench.db import Graph
from workbench.engine import candidates as candidates_module
from workbench.engine import quotas
from workbench.engine.errors import CONCURRENT_UPDATE, PROVIDER_NOT_FOUND, BadRequest, Conflict, NotFound
from workbench.ids import normalise_uuid

Allocations = dict[str, dict[str, int]]  # provider uuid -> resource class -> amount

LOCK_PROVIDERS = """
// Take each provider's write lock, in UUID order so that two claims never wait
// on each other crosswise. Setting a property takes the lock; reading the
// generation only after that makes the read current (Neo4j's advice against
// lost updates). Providers that receive allocations get a new generation, as
// in Placement; those only given back to keep theirs.
UNWIND $uuids AS uuid
MATCH (rp:Provider {uuid: uuid})
SET rp._lock = true
WITH rp, rp.generation AS previous
SET rp.generation = previous + CASE WHEN rp.uuid IN $receiving THEN 1 ELSE 0 END
REMOVE rp._lock
RETURN rp.uuid AS uuid, previous
"""

SUBTREE = """
// A provider, found by uuid or name, and (with $subtree) every provider below it.
MATCH (top:Provider) WHERE top.uuid = $key OR top.name = $key
MATCH (top)-[:PARENT_OF*0..]->(rp:Provider)
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
// Capacity, limits and usage of the inventories a claim wants, usage counted
// without the claiming consumer's own current allocations (they are replaced).
UNWIND $wanted AS want
MATCH (rp:Provider {uuid: want.provider})
OPTIONAL MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory {resource_class: want.resource_class})
CALL (inv) {
  OPTIONAL MATCH (inv)<-[allocation:CONSUMES]-(other:Consumer)
  WHERE NOT other.uuid IN $consumers
  RETURN coalesce(sum(allocation.used), 0) AS used
}
RETURN want.provider AS provider, want.resource_class AS resource_class, inv IS NOT NULL AS exists,
       used, inv.min_unit AS min_unit, inv.max_unit AS max_unit, inv.step_size AS step_size,
       toInteger((inv.total - inv.reserved) * inv.allocation_ratio) AS capacity
"""

LOCK_CONSUMER = """
// Lock the consumer, creating it if it is new (generation 0 until its first
// write commits). MERGE on the unique uuid makes a second creator wait for the
// first, and then see its generation: two writers cannot both create it.
MERGE (c:Consumer {uuid: $uuid})
ON CREATE SET c.generation = 0
SET c._lock = true
REMOVE c._lock
RETURN c.generation AS generation
"""

CONSUMER_PROVIDERS = """
// The providers a consumer has allocations on now.
MATCH (:Consumer {uuid: $uuid})-[:CONSUMES]->(:Inventory)<-[:HAS_INVENTORY]-(rp:Provider)
RETURN DISTINCT rp.uuid AS uuid
"""

REPLACE_ALLOCATIONS = """
// Drop the consumer's old allocations and write the new ones.
MATCH (c:Consumer {uuid: $uuid})
SET c.generation = c.generation + 1, c.project_id = $project, c.user_id = $user,
    c.consumer_type = $consumer_type
WITH c
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
       c.consumer_type AS consumer_type
"""

USAGES = """
// GET /usages: what a project (and optionally one user) holds, per consumer
// type and resource class, and which consumers hold it.
MATCH (c:Consumer {project_id: $project})-[a:CONSUMES]->(inv:Inventory)
WHERE $user IS NULL OR c.user_id = $user
RETURN c.consumer_type AS consumer_type, inv.resource_class AS resource_class,
       sum(a.used) AS used, collect(DISTINCT c.uuid) AS consumers
"""

PROVIDER_USAGES = """
MATCH (rp:Provider {uuid: $uuid})
OPTIONAL MATCH (rp)-[:HAS_INVENTORY]->(inv:Inventory)
OPTIONAL MATCH (inv)<-[a:CONSUMES]-(:Consumer)
RETURN rp.generation AS generation, inv.resource_class AS resource_class, coalesce(sum(a.used), 0) AS used
"""


def set_allocations(
    graph: Graph,
    consumer_uuid: str,
    allocations: Allocations,
    project: str,
    user: str,
    consumer_type: str = "INSTANCE",
    consumer_generation: int | None = None,
) -> None:
    """``PUT /allocations/{consumer}``: replace a consumer's allocations (empty: release them)."""
    write_allocations(
        graph,
        {
            consumer_uuid: {
                "allocations": allocations,
                "project_id": project,
                "user_id": user,
                "consumer_type": consumer_type,
                "consumer_generation": consumer_generation,
            }
        },
    )


def write_allocations(graph: Graph, consumers: dict[str, dict]) -> None:
    """``POST /allocations``: several consumers' allocations, all or nothing.

    ``consumers``: consumer uuid -> {allocations, project_id, user_id,
    consumer_type, consumer_generation}. Capacity, then quota, are checked
    inside the transaction.
    """
    consumers = {_consumer_uuid(uuid): dict(body) for uuid, body in consumers.items()}
    for uuid, body in consumers.items():
        body["allocations"] = _validated(uuid, body.get("allocations") or {})

    def work(tx: neo4j.ManagedTransaction) -> None:
        touched = {rp for body in consumers.values() for rp in body["allocations"]}
        for uuid in consumers:
            touched |= {r["uuid"] for r in tx.run(CONSUMER_PROVIDERS, uuid=uuid).data()}
        receiving = sorted({rp for body in consumers.values() for rp in body["allocations"]})
        rows = tx.run(LOCK_PROVIDERS, uuids=sorted(touched), receiving=receiving).data()
        locked = {r["uuid"] for r in rows}
        for body in consumers.values():
            if missing := sorted(set(body["allocations"]) - locked):
                raise BadRequest(f"Allocation for resource provider '{missing[0]}' that does not exist.")
        _check_and_write(tx, consumers, enforce_units=True)

    graph.write(work)


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
    taken: Allocations = {}

    def work(tx: neo4j.ManagedTransaction) -> None:
        rows = tx.run(SUBTREE, key=provider, subtree=subtree).data()
        if not rows:
            raise NotFound(f"No resource provider '{provider}'", PROVIDER_NOT_FOUND)
        top = rows[0]
        uuids = sorted(r["uuid"] for r in rows)
        locked = {r["uuid"]: r["previous"] for r in tx.run(LOCK_PROVIDERS, uuids=uuids, receiving=uuids).data()}
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
                taken.setdefault(row["provider"], {})[row["resource_class"]] = row["free"]
        if not taken:
            raise Conflict(f"nothing is free on {top['top_name']} (is it parked with reserved == total?)")
        body = {
            "allocations": taken,
            "project_id": project,
            "user_id": user,
            "consumer_type": consumer_type,
            "consumer_generation": None,
        }
        _check_and_write(tx, {consumer: body}, enforce_units=False)

    graph.write(work)
    return taken


def _check_and_write(tx: neo4j.ManagedTransaction, consumers: dict[str, dict], enforce_units: bool) -> None:
    """With the providers locked: generations, capacity and quota, then the write."""
    for uuid, body in consumers.items():
        _check_generation(tx, uuid, body.get("consumer_generation"))
    _check_capacity(tx, consumers, enforce_units)
    quotas.check_in_transaction(tx, consumers)
    for uuid, body in consumers.items():
        if not body["allocations"]:
            tx.run(DELETE_CONSUMER, uuid=uuid).consume()
            continue
        tx.run(
            REPLACE_ALLOCATIONS,
            uuid=uuid,
            project=body["project_id"],
            user=body["user_id"],
            consumer_type=body.get("consumer_type") or "INSTANCE",
            allocations=[
                {"provider": rp, "resource_class": rc, "used": n}
                for rp, resources in body["allocations"].items()
                for rc, n in resources.items()
            ],
        ).consume()


def delete_allocations(graph: Graph, consumer_uuid: str) -> None:
    """``DELETE /allocations/{consumer}``: release everything the consumer holds."""
    uuid = _consumer_uuid(consumer_uuid)

    def work(tx: neo4j.ManagedTransaction) -> None:
        # Giving back needs no provider lock: it can only make room.
        if not tx.run(CONSUMER_PROVIDERS, uuid=uuid).data():
            raise NotFound(f"No allocations for consumer '{uuid}'")
        tx.run(DELETE_CONSUMER, uuid=uuid).consume()

    graph.write(work)


def get_allocations(graph: Graph, consumer_uuid: str) -> dict:
    """``GET /allocations/{consumer}`` (1.38 shape)."""
    rows = graph.read(GET_ALLOCATIONS, uuid=_consumer_uuid(consumer_uuid))
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


def usages(graph: Graph, project: str, user: str | None = None) -> dict:
    """``GET /usages?project_id=..[&user_id=..]`` (1.38: grouped by consumer type)."""
    grouped: dict[str, dict] = {}
    holders: dict[str, set[str]] = collections.defaultdict(set)
    for row in graph.read(USAGES, project=project, user=user):
        grouped.setdefault(row["consumer_type"], {})[row["resource_class"]] = row["used"]
        holders[row["consumer_type"]].update(row["consumers"])
    for consumer_type, consumers in holders.items():
        grouped[consumer_type]["consumer_count"] = len(consumers)
    return {"usages": grouped}


def provider_usages(graph: Graph, provider_uuid: str) -> dict:
    """``GET /resource_providers/{uuid}/usages``."""
    rows = graph.read(PROVIDER_USAGES, uuid=provider_uuid)
    if not rows:
        raise NotFound(f"No resource provider with uuid {provider_uuid} found")
    return {
        "resource_provider_generation": rows[0]["generation"],
        "usages": {r["resource_class"]: r["used"] for r in rows if r["resource_class"]},
    }


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
    body = candidates_module.find(graph, query)
    found = body["allocation_requests"]
    if not found:
        raise Conflict(f"No allocation candidates for {query!r}: nothing to claim")
    if not 0 <= pick < len(found):
        raise BadRequest(f"--pick {pick} is out of range: there are {len(found)} candidates (0 to {len(found) - 1})")
    chosen = {rp: dict(v["resources"]) for rp, v in found[pick]["allocations"].items()}
    set_allocations(graph, consumer_uuid, chosen, project, user, consumer_type, None)
    return chosen


# -- checks inside the transaction ---------------------------------------------------------


def _check_generation(tx: neo4j.ManagedTransaction, uuid: str, expected: int | None) -> None:
    current = tx.run(LOCK_CONSUMER, uuid=uuid).single()["generation"] or None  # 0: new
    if current != expected:
        shown = "null" if current is None else current
        raise Conflict(f"consumer generation conflict - expected {shown} but got {expected}", CONCURRENT_UPDATE)


def _check_capacity(tx: neo4j.ManagedTransaction, consumers: dict[str, dict], enforce_units: bool = True) -> None:
    """Every amount fits its inventory's rules, and the total fits the capacity."""
    wanted: dict[tuple[str, str], int] = collections.Counter()
    for body in consumers.values():
        for rp, resources in body["allocations"].items():
            for rc, amount in resources.items():
                wanted[rp, rc] += amount
    if not wanted:
        return
    rows = tx.run(
        INVENTORY_STATE,
        wanted=[{"provider": rp, "resource_class": rc} for rp, rc in sorted(wanted)],
        consumers=sorted(consumers),
    ).data()
    for row in rows:
        rp, rc = row["provider"], row["resource_class"]
        amount = wanted[rp, rc]
        if not row["exists"]:
            raise Conflict(
                f"Unable to allocate inventory: Inventory for '{rc}' on resource provider '{rp}' invalid."
            )
        for body in consumers.values() if enforce_units else ():
            single = body["allocations"].get(rp, {}).get(rc)
            if single is not None and (
                not row["min_unit"] <= single <= row["max_unit"] or single % row["step_size"]
            ):
                raise Conflict(
                    f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                    f"'{rp}'. The requested amount would violate inventory constraints."
                )
        if row["used"] + amount > row["capacity"]:
            raise Conflict(
                f"Unable to allocate inventory: Unable to create allocation for '{rc}' on resource provider "
                f"'{rp}'. The requested amount would exceed the capacity."
            )


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
