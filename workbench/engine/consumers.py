"""Consumers: who holds allocations, with their project, user, type and generation.

A ``(:Consumer {uuid, project_id, user_id, consumer_type, generation})`` node
exists while it holds allocations, as in Placement
(placement/handlers/util.py ensure_consumer, placement/objects/consumer.py):

* a write names its consumer; an unknown one is created (generation 0), and
  the first write that gives it allocations makes its generation 1;
* every write that touches its allocations adds one to its generation, and
  from microversion 1.28 the writer must send the generation it last saw
  (``None`` for a consumer it expects not to exist), or get 409
  ``placement.concurrent_update``;
* project, user and (from 1.38) type are overwritten by each write, without
  a generation change; before 1.38 a new consumer has no type, which
  Placement shows as ``unknown``;
* a consumer whose allocations were all written away is deleted. One created
  by a write that gave it nothing stays, with generation 0, as in Placement.

These functions run inside the caller's write transaction.
"""

from __future__ import annotations

import neo4j

from workbench.engine.errors import CONCURRENT_UPDATE, Conflict

# Placement's name for a consumer without a type (placement/objects/consumer_type.py).
UNKNOWN_TYPE = "unknown"


class _Unchecked:
    """The consumer generation is not checked (microversions before 1.28)."""

    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED = _Unchecked()

LOCK_CONSUMER = """
// Lock the consumer, creating it if it is new (generation 0). MERGE on the
// unique uuid makes a second creator wait for the first and then see its
// node: two writers cannot both create it. _created marks a node made by this
// very statement (an existing one may also be at generation 0).
MERGE (c:Consumer {uuid: $uuid})
ON CREATE SET c.generation = 0, c._created = true
SET c._lock = true
WITH c, c._created IS NOT NULL AS created
REMOVE c._lock, c._created
RETURN c.generation AS generation, created
"""

SET_ATTRIBUTES = """
// Project and user always follow the request; the type only when one is given.
MATCH (c:Consumer {uuid: $uuid})
SET c.project_id = $project, c.user_id = $user,
    c.consumer_type = coalesce($consumer_type, c.consumer_type)
"""

BUMP_GENERATIONS = """
UNWIND $uuids AS uuid
MATCH (c:Consumer {uuid: uuid})
SET c.generation = c.generation + 1
"""

DELETE_IF_EMPTY = """
// Consumers left without allocations disappear.
UNWIND $uuids AS uuid
MATCH (c:Consumer {uuid: uuid})
WHERE NOT EXISTS { (c)-[:CONSUMES]->() }
DETACH DELETE c
"""


def check_generation(tx: neo4j.ManagedTransaction, uuid: str, expected) -> None:
    """Lock (or create) the consumer and compare its generation with ``expected``.

    ``expected`` is None for a consumer the writer believes new, or
    :data:`UNCHECKED` to skip the comparison (before microversion 1.28).
    """
    row = tx.run(LOCK_CONSUMER, uuid=uuid).single()
    if expected is UNCHECKED:
        return
    current = None if row["created"] else row["generation"]
    if current != expected:
        shown = "null" if current is None else current
        raise Conflict(f"consumer generation conflict - expected {shown} but got {expected}", CONCURRENT_UPDATE)


def set_attributes(
    tx: neo4j.ManagedTransaction, uuid: str, project: str, user: str, consumer_type: str | None
) -> None:
    tx.run(SET_ATTRIBUTES, uuid=uuid, project=project, user=user, consumer_type=consumer_type).consume()


def bump_generations(tx: neo4j.ManagedTransaction, uuids: list[str]) -> None:
    tx.run(BUMP_GENERATIONS, uuids=uuids).consume()


def delete_if_empty(tx: neo4j.ManagedTransaction, uuids: list[str]) -> None:
    tx.run(DELETE_IF_EMPTY, uuids=uuids).consume()
