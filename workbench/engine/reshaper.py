"""The reshaper (``POST /reshaper``, 1.30): move inventories and allocations
across the providers of a tree in one transaction.

The typical reshape moves VCPU from a compute node to new NUMA children: the
node's inventory shrinks, the children's grows, and every consumer's
allocations move with it. Done as separate calls, something in between would
see an inventory in use that is about to vanish, or allocations with nowhere
to go. Placement's answer (placement/handlers/reshaper.py,
placement/objects/reshaper.py), reproduced here with its checks, texts and
generations:

1. each provider whose inventories are given must exist (400
   ``placement.resource_provider.not_found``) at the generation given (409);
2. each consumer's generation (409), then every provider allocated from
   must exist (400), as for ``POST /allocations``;
3. an *interim* inventory is written: each provider keeps its current
   classes plus the new ones (new values win), so that allocations may sit
   on old and new places alike; an unknown class is a 400;
4. the allocations are replaced exactly as ``POST /allocations`` does, with
   capacity checked against the interim inventory (409);
5. the *final* inventory is written: classes not given are removed, which
   is refused (409 ``placement.inventory.inuse``) while allocations remain.

Each of these writes bumps the generation of the providers it touches, as
in Placement: a provider given a new inventory moves on by one for the
interim write (none if the new inventory is empty), one if allocations are
written to it or given back from it, and one for the final write.
"""

from __future__ import annotations

import neo4j

from workbench.graphdb.db import Graph, Reader
from workbench.engine import allocations
from workbench.engine.errors import (
    CONCURRENT_UPDATE,
    INVENTORY_INUSE,
    PROVIDER_NOT_FOUND,
    BadRequest,
    Conflict,
)
from workbench.engine.inventories import (
    CLASSES_IN_USE,
    DELETE_INVENTORIES,
    PROVIDER_INVENTORIES,
    UPSERT_INVENTORIES,
)
from workbench.engine.providers import bump_generation, unknown_resource_classes
from workbench.ids import normalise_uuid
from workbench.scenario import INVENTORY_DEFAULTS


def reshape(graph: Graph, inventories: dict[str, dict], consumers: dict[str, dict]) -> None:
    """Replace the inventories of some providers and the allocations of some consumers, atomically.

    ``inventories``: provider uuid -> {"resource_provider_generation": n,
    "inventories": {class: fields}} (a whole ``PUT .../inventories`` body,
    already valid against Placement's schema). ``consumers``: as for
    :func:`workbench.engine.allocations.write_allocations`. Both in request
    order, which decides which error is reported first.
    """
    wanted = {
        normalise_uuid(rp) or rp: (
            body["resource_provider_generation"],
            {rc: _record(fields) for rc, fields in body["inventories"].items()},
        )
        for rp, body in inventories.items()
    }
    consumers = allocations.prepare(consumers)

    def work(tx: neo4j.ManagedTransaction) -> None:
        locked = allocations.lock_providers(tx, consumers, also=wanted)
        for rp, (generation, _) in wanted.items():
            if rp not in locked:
                raise BadRequest(
                    f"Resource provider {rp} in inventories not found: No resource provider with uuid {rp} found",
                    PROVIDER_NOT_FOUND,
                )
            if generation != locked[rp]:
                raise Conflict(
                    f"resource provider generation conflict for provider {rp}: "
                    f"actual: {locked[rp]}, given: {generation}",
                    CONCURRENT_UPDATE,
                )
        allocations.check_consumers(tx, consumers)
        allocations.check_providers_exist(consumers, locked)
        for rp, (_, records) in wanted.items():
            if records:
                _interim(tx, rp, records)
        allocations.replace(tx, consumers, "reshape")
        for rp, (_, records) in wanted.items():
            _final(tx, rp, records)

    graph.write(work)


def _record(fields: dict) -> dict:
    record = {**INVENTORY_DEFAULTS, **fields}
    record.pop("resource_provider_generation", None)  # allowed in a record by the schema, unused
    record["allocation_ratio"] = float(record["allocation_ratio"])  # a float column in Placement
    return record


def _interim(tx: neo4j.ManagedTransaction, rp: str, records: dict[str, dict]) -> None:
    """Add or update the given classes, keeping the others for now."""
    if unknown := unknown_resource_classes(Reader(tx), list(records)):
        raise BadRequest(allocations.UNKNOWN_CLASS["reshape"].format(name=unknown[0]))
    rows = [{"resource_class": rc, **fields} for rc, fields in records.items()]
    tx.run(UPSERT_INVENTORIES, uuid=rp, inventories=rows).consume()
    bump_generation(tx, rp)


def _final(tx: neo4j.ManagedTransaction, rp: str, records: dict[str, dict]) -> None:
    """Remove the classes not given; refused while they have allocations."""
    current = tx.run(PROVIDER_INVENTORIES, uuid=rp).single()["inventories"]
    removed = sorted({inv["resource_class"] for inv in current} - set(records), key=allocations.class_order)
    if removed:
        in_use = sorted(
            (r["resource_class"] for r in tx.run(CLASSES_IN_USE, uuid=rp, classes=removed).data()),
            key=allocations.class_order,
        )
        if in_use:
            raise Conflict(
                f"update conflict: Inventory for '{', '.join(in_use)}' on resource provider '{rp}' in use.",
                INVENTORY_INUSE,
            )
        tx.run(DELETE_INVENTORIES, uuid=rp, classes=removed).consume()
    bump_generation(tx, rp)
