"""Loads that survive a crash: a journal in the graph, undone or finished on the next connect.

A load of several transactions, or one that replaces the graph (``--reset``),
cannot be all-or-nothing through transactions alone, so the loader keeps a
journal in the graph itself:

* before its first batch it writes ``(:_Load {id, phase: 'writing'})``;
* every Provider and Consumer it creates, and every Trait or Aggregate node it
  is the first to use, carries ``_load: id`` (inventories go with their provider);
* a reset does not delete the old graph first: it *retires* it, each node's
  labels stashed in ``_labels`` and replaced by the one label ``_Retired``.
  Every query of the workbench matches by label, so the old graph is invisible
  and the new one's uniqueness constraints do not clash with it, yet it can
  be put back;
* the load's last transaction sets the phase to ``'committed'``: that is its
  commit point. After it the retired nodes are deleted and the marks cleared,
  in batches, and the journal goes.

:func:`resolve` brings any journal to an end: before the commit point it
deletes what the load created (a provider with its inventories in one inner
transaction, so no batch boundary leaves an orphan) and gives the retired
nodes their labels back; after it, it finishes the clean-up. Every step can be
repeated, so a crash during recovery is recovered the next time.
:func:`recover` runs on every connect (``Graph.connect``). Undoing a load needs
no recount of stored usage (:mod:`workbench.engine.usages`): a scenario's
consumers allocate only from its own providers, which go with them.

One load (or recovery) runs at a time. Its process holds a *lease*: an open
transaction, tagged in its metadata, that has written the lease node under a
uniqueness constraint and never commits it. Anyone else writing that node
waits on its lock; if the holder dies (its connection closes, or the server
restarts) the transaction is rolled back and the lease is free again. A load
or a recovery on connect first looks for a running lease transaction and, if
there is one, stands back, so recovery never undoes a load still running.
"""

from __future__ import annotations

import contextlib
import logging
import uuid as uuidlib
from typing import TYPE_CHECKING, Iterator

import neo4j

from workbench.engine import usages

if TYPE_CHECKING:
    from workbench.graphdb.db import Graph

log = logging.getLogger(__name__)

BATCH = 10000  # nodes per inner transaction of the batched steps below
LEASE_TAG = "load-lease"  # the lease transaction's metadata, to find it among the running ones

LEASE_CONSTRAINT = "CREATE CONSTRAINT load_lease IF NOT EXISTS FOR (l:_LoadLease) REQUIRE l.name IS UNIQUE"

TAKE_LEASE = """
// Never committed: the lock on this (constrained) node is the lease itself.
MERGE (l:_LoadLease {name: 'load'})
SET l.taken = timestamp()
"""

LEASE_HOLDERS = """
SHOW TRANSACTIONS YIELD database, metaData, transactionId
WHERE database = $database AND metaData.workbench = $tag
RETURN transactionId
"""

JOURNALS = "MATCH (j:_Load) RETURN j.id AS id, j.phase AS phase, j.source AS source ORDER BY j.started"

BEGIN = """
CREATE (:_Load {id: $id, phase: 'writing', source: $source, started: datetime()})
"""

COMMIT = """
// The commit point: run in the load's last transaction.
MATCH (j:_Load {id: $id}) SET j.phase = 'committed'
"""

RETIRE = """
// Hide the old graph without deleting it: stash each node's labels, leave it only _Retired.
MATCH (n) WHERE NOT n:_Retired AND NOT n:_Load
CALL (n) {
  SET n._labels = labels(n)
  SET n:_Retired
  WITH n
  REMOVE n:$(n._labels)
} IN TRANSACTIONS OF $batch ROWS
"""

DROP_CREATED = """
// Undo: what the load created. A provider and its inventories go in one inner
// transaction, so an interruption between batches cannot orphan an inventory.
MATCH (n) WHERE n._load = $id
CALL (n) {
  OPTIONAL MATCH (n)-[:HAS_INVENTORY]->(inv:Inventory)
  DETACH DELETE inv, n
} IN TRANSACTIONS OF $batch ROWS
"""

RESTORE_RETIRED = """
// Undo a reset: the old graph gets its labels back (after DROP_CREATED, so no uniqueness clash).
MATCH (n:_Retired)
CALL (n) {
  SET n:$(n._labels)
  REMOVE n:_Retired, n._labels
} IN TRANSACTIONS OF $batch ROWS
"""

DELETE_RETIRED = """
MATCH (n:_Retired)
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch ROWS
"""

CLEAR_MARKS = """
MATCH (n) WHERE n._load = $id
CALL (n) { REMOVE n._load } IN TRANSACTIONS OF $batch ROWS
"""

END = "MATCH (j:_Load {id: $id}) DELETE j"


class LoadInProgress(RuntimeError):
    """Another process is loading into (or recovering) this database."""


def recover(graph: "Graph") -> list[str]:
    """Undo or finish any load an earlier process left unfinished; called on connect.

    Returns what was done, one line per journal (also logged as a warning).
    Does nothing while another process holds the lease (its load is running).
    """
    graph.driver.execute_query(LEASE_CONSTRAINT, database_=graph.database)
    usages.store_missing_usage(graph)  # a graph written before usage was stored on inventories
    if not graph.read(JOURNALS):
        return []
    try:
        with lease(graph):
            return resolve_all(graph)
    except LoadInProgress:
        return []
    except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as error:
        # Connecting still works; the journal stays, and the next connect tries again.
        log.warning("workbench: could not recover an interrupted load (%s); the next connect tries again", error)
        return []


def resolve_all(graph: "Graph") -> list[str]:
    """Bring every journal to an end (the caller holds the lease)."""
    done = []
    for journal in graph.read(JOURNALS):
        outcome = resolve(graph, journal["id"])
        done.append(f"an interrupted load of {journal['source']} was {outcome}")
        log.warning("workbench: %s", done[-1])
    return done


def resolve(graph: "Graph", load_id: str) -> str:
    """Undo the load ``load_id`` if it did not reach its commit point, else finish it.
    Returns 'undone' or 'finished' ('gone' if there is no such journal)."""
    rows = graph.read("MATCH (j:_Load {id: $id}) RETURN j.phase AS phase", id=load_id)
    if not rows:
        return "gone"
    if rows[0]["phase"] == "committed":
        _batched(graph, DELETE_RETIRED)
        _batched(graph, CLEAR_MARKS, id=load_id)
        outcome = "finished"
    else:
        _batched(graph, DROP_CREATED, id=load_id)
        _batched(graph, RESTORE_RETIRED)
        outcome = "undone"
    graph.run(END, id=load_id)
    return outcome


def begin(graph: "Graph", source: str) -> str:
    """Write the journal of a new load, before anything else of it; return its id."""
    load_id = str(uuidlib.uuid4())
    graph.run(BEGIN, id=load_id, source=source)
    return load_id


def retire(graph: "Graph") -> None:
    """Hide the whole current graph (but the journal), to be deleted once the load commits."""
    _batched(graph, RETIRE)


def commit(tx: neo4j.ManagedTransaction, load_id: str) -> None:
    """Mark the load committed, inside its last transaction."""
    tx.run(COMMIT, id=load_id).consume()


@contextlib.contextmanager
def lease(graph: "Graph") -> Iterator[None]:
    """Hold the load lease for the ``with`` block; LoadInProgress if someone else holds it."""
    # Asking first keeps a second loader (or a connect) from waiting behind a load of
    # minutes; the lock still decides if two ask at the same moment.
    if graph.read(LEASE_HOLDERS, database=graph.database, tag=LEASE_TAG):
        raise LoadInProgress(
            "another load (or its recovery) is running on this database; try again when it has finished"
        )
    with graph.driver.session(database=graph.database) as session:
        tx = session.begin_transaction(metadata={"workbench": LEASE_TAG})
        try:
            tx.run(TAKE_LEASE).consume()
            yield
        finally:
            with contextlib.suppress(Exception):  # the server may be gone: the lease went with it
                tx.rollback()


def _batched(graph: "Graph", query: str, **params) -> None:
    # CALL ... IN TRANSACTIONS needs an auto-commit transaction.
    with graph.driver.session(database=graph.database) as session:
        session.run(query, batch=BATCH, **params).consume()
