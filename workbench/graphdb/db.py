"""The connection to Neo4j and the graph schema.

The workbench talks to one Neo4j 5 database. By default that is the local
server ``workbench server start`` runs (bolt://127.0.0.1:7687, user neo4j with
the password generated in its home, read from there); set
``NEO4J_URI`` (and ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) to use
any other Neo4j 5: Docker ``neo4j:5-community``, Neo4j Desktop, Aura, a cluster.

The graph model (see README, "Graph model"):

    (:Provider {uuid, name, generation})
    (:Provider)-[:PARENT_OF]->(:Provider)            nesting; a root has no parent
    (:Provider)-[:HAS_INVENTORY]->(:Inventory {resource_class, total, reserved,
                                    min_unit, max_unit, step_size, allocation_ratio, used})
    (:Provider)-[:HAS_TRAIT]->(:Trait {name})
    (:Provider)-[:MEMBER_OF]->(:Aggregate {uuid})
    (:Consumer {uuid, project_id, user_id, consumer_type, generation})
        -[:CONSUMES {used}]->(:Inventory)             an allocation
    (:ResourceClass {name}), (:Trait {name, custom: true})   custom catalogue entries
    (:Limit {project_id, user_id, consumer_type, resource_class, limit})   quotas
    (:Project {id})                                   a project's quota lock

Usage is the sum of the CONSUMES relationships into an inventory. Its copy
``used``, which the candidate search reads, is stored by every writer of
allocations in the same transaction (workbench.engine.usages).
"""

from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

import neo4j
from neo4j import GraphDatabase, RoutingControl
from neo4j.exceptions import AuthError, ServiceUnavailable

DEFAULT_DATABASE = "neo4j"
T = TypeVar("T")

# Idempotent: run on every connect.
SCHEMA = [
    "CREATE CONSTRAINT provider_uuid IF NOT EXISTS FOR (p:Provider) REQUIRE p.uuid IS UNIQUE",
    "CREATE CONSTRAINT provider_name IF NOT EXISTS FOR (p:Provider) REQUIRE p.name IS UNIQUE",
    "CREATE CONSTRAINT aggregate_uuid IF NOT EXISTS FOR (a:Aggregate) REQUIRE a.uuid IS UNIQUE",
    "CREATE CONSTRAINT trait_name IF NOT EXISTS FOR (t:Trait) REQUIRE t.name IS UNIQUE",
    "CREATE CONSTRAINT resource_class_name IF NOT EXISTS FOR (r:ResourceClass) REQUIRE r.name IS UNIQUE",
    "CREATE CONSTRAINT consumer_uuid IF NOT EXISTS FOR (c:Consumer) REQUIRE c.uuid IS UNIQUE",
    "CREATE CONSTRAINT project_id IF NOT EXISTS FOR (p:Project) REQUIRE p.id IS UNIQUE",
    "CREATE INDEX inventory_class IF NOT EXISTS FOR (i:Inventory) ON (i.resource_class)",
    "CREATE INDEX consumer_project IF NOT EXISTS FOR (c:Consumer) ON (c.project_id)",
]


def _rows(keys: list[str], records) -> list[dict]:
    """Records as dicts. The workbench's queries return plain values (strings,
    numbers, lists), never nodes, so the values are taken as they are:
    ``Record.data()`` walks every value looking for nodes to convert, which
    took longer than Neo4j did to answer on large results."""
    return [dict(zip(keys, record)) for record in records]


class Reader:
    """Read queries inside one transaction (see :meth:`Graph.reading`)."""

    def __init__(self, tx: neo4j.ManagedTransaction):
        self.tx = tx

    def read(self, query: str, **params: Any) -> list[dict]:
        result = self.tx.run(query, params)
        return _rows(result.keys(), result)


class Neo4jUnavailable(RuntimeError):
    """Neo4j could not be reached; the message says where we looked and what to do."""


def local_uri() -> str:
    return f"bolt://127.0.0.1:{os.environ.get('WORKBENCH_BOLT_PORT', '7687')}"


def local_password_file():
    from workbench.graphdb.server import default_home, password_file

    return password_file(default_home())


def local_password() -> str | None:
    """The password `workbench server start` generated for the local server (kept in its home)."""
    from workbench.graphdb.server import read_password

    return read_password(local_password_file().parent)


class Graph:
    """One Neo4j database, with the Placement schema in place."""

    def __init__(self, driver: neo4j.Driver, uri: str, database: str):
        self.driver, self.uri, self.database = driver, uri, database

    @classmethod
    def connect(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        **driver_options: Any,
    ) -> "Graph":
        """Connect to ``uri`` (default: ``NEO4J_URI`` or the local server) and ensure the schema.

        ``driver_options``: passed to the driver (e.g. ``max_transaction_retry_time=2`` for an
        interactive widget that must report a stopped server at once rather than retry for 30 s)."""
        uri = uri or os.environ.get("NEO4J_URI") or local_uri()
        user = user or os.environ.get("NEO4J_USER")
        password = password or os.environ.get("NEO4J_PASSWORD")
        if password is None and uri == local_uri():
            password = local_password()
        auth = (user or "neo4j", password) if password else None
        database = database or os.environ.get("NEO4J_DATABASE") or DEFAULT_DATABASE
        # Notifications (e.g. "relationship type CONSUMES does not exist yet" on an
        # empty graph) are hints for query authors, not for workbench users.
        driver = GraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF", **driver_options)
        try:
            driver.verify_connectivity()
        except AuthError as exc:
            driver.close()
            where = (
                f"the local server's password is kept in {local_password_file()}"
                if uri == local_uri()
                else "set NEO4J_USER and NEO4J_PASSWORD"
            )
            raise Neo4jUnavailable(
                f"Neo4j at {uri} refused the login{' as ' + auth[0] if auth else ' without credentials'} "
                f"({exc.message}); {where}"
            ) from None
        except (ServiceUnavailable, OSError, ValueError) as exc:
            driver.close()
            how = (
                "start the local server with `workbench server start`"
                if uri == local_uri()
                else "check that it is running and that NEO4J_USER / NEO4J_PASSWORD are right"
            )
            raise Neo4jUnavailable(
                f"cannot reach Neo4j at {uri} ({type(exc).__name__}: {exc}); {how}, "
                "or set NEO4J_URI to a running Neo4j 5"
            ) from None
        graph = cls(driver, uri, database)
        graph.ensure_schema()
        from workbench.engine import journal  # the engine imports this module

        journal.recover(graph)  # undo or finish a load an earlier process left unfinished
        return graph

    def close(self) -> None:
        self.driver.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- running Cypher ----------------------------------------------------
    def read(self, query: str, **params: Any) -> list[dict]:
        """Run a read-only query in its own transaction; return its records as dicts."""
        records, _summary, keys = self.driver.execute_query(
            query, params, database_=self.database, routing_=RoutingControl.READ
        )
        return _rows(keys, records)

    def reading(self, work: Callable[["Reader"], T]) -> T:
        """Run ``work(reader)`` in one read transaction: its queries then cost a
        round trip each, without a transaction begun and committed around
        every one. The driver retries ``work`` on transient errors."""
        with self.driver.session(database=self.database, default_access_mode=neo4j.READ_ACCESS) as session:
            return session.execute_read(lambda tx: work(Reader(tx)))

    def write(self, work: Callable[[neo4j.ManagedTransaction], Any]) -> Any:
        """Run ``work(tx)`` in one managed write transaction.

        The driver retries it on transient errors (deadlocks, leader
        switches), so ``work`` must be safe to run again; anything it raises
        rolls the whole transaction back.
        """
        with self.driver.session(database=self.database) as session:
            return session.execute_write(work)

    def run(self, query: str, **params: Any) -> list[dict]:
        """Run one write query in its own transaction."""
        return self.write(lambda tx: tx.run(query, params).data())

    # -- schema and housekeeping ---------------------------------------------
    def ensure_schema(self) -> None:
        for statement in SCHEMA:
            self.driver.execute_query(statement, database_=self.database)

    def reset(self) -> None:
        """Delete every node and relationship (the schema stays)."""
        with self.driver.session(database=self.database) as session:
            # Batched so that a large graph never needs one huge transaction;
            # CALL ... IN TRANSACTIONS needs an auto-commit transaction.
            session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()

    def server_info(self) -> dict:
        rows = self.read("CALL dbms.components() YIELD name, versions, edition RETURN name, versions, edition")
        row = rows[0] if rows else {}
        return {"uri": self.uri, "database": self.database, "version": (row.get("versions") or ["?"])[0],
                "edition": row.get("edition", "?")}
