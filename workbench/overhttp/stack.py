"""Each service served over HTTP on a cloud loaded by its fast path, with the processes to charge it for.

* the real Placement: a fresh database on a PostgreSQL server (its production kind of database), loaded
  through Placement's object layer (:meth:`PlacementOracle.load_bulk`), then served by
  ``workbench placement-serve --connection`` on it;
* the graph: the Neo4j of the environment (``NEO4J_URI`` ...), loaded by :func:`workbench.engine.loader.load`
  (which empties it first), then served by ``workbench serve``.

Both are gunicorn with the same worker class and threads (:func:`workbench.api.serve.gunicorn_server`).
A :class:`Served` names the process trees that do a service's work, so their CPU time can be measured:
the gunicorn master and its workers, and the database server (the Neo4j JVM; the PostgreSQL postmaster
with its backends).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator

from workbench.bench import neo4j_pid_for
from workbench.comparison.oracle import PlacementOracle
from workbench.comparison.placement_serve import ServerProcess
from workbench.comparison.postgres import LocalPostgres
from workbench.engine import loader
from workbench.graphdb.db import Graph
from workbench.overhttp.client import Client, tree_cpu_seconds
from workbench.scenario import Scenario


@dataclasses.dataclass
class Served:
    name: str  # "graph" or "placement"
    url: str
    workers: int
    database: str  # what it runs on, in words
    pids: dict[str, int | None]  # process tree roots doing its work: "gunicorn", "neo4j" / "postgresql"
    store: Any  # a Graph, or the SQLAlchemy engine of Placement's database: for the checks in the store

    def client(self) -> Client:
        return Client(self.url)

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU seconds so far of each of its process trees."""
        return {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}


def postmaster_pid(server: LocalPostgres) -> int | None:
    try:
        return int((server.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def placement_served(postgres: LocalPostgres, scenario: Scenario, workers: int,
                     settings: tuple[tuple[str, str, str], ...] = ()) -> Iterator[Served]:
    """The real Placement on a fresh PostgreSQL database holding ``scenario``; dropped afterwards.
    ``settings``: (group, option, value) of its configuration (otherwise its defaults)."""
    with PlacementOracle(postgres=postgres.url) as oracle:
        oracle.load_bulk(scenario)
        oracle.analyze()
        connection = oracle.engine.url.render_as_string(hide_password=False)
        with ServerProcess("placement", workers, connection=connection, settings=settings) as server:
            words = f"PostgreSQL (127.0.0.1:{postgres.port})" + "".join(f"; {g}.{o} = {v}" for g, o, v in settings)
            yield Served("placement", server.url, workers, words,
                         {"gunicorn": server.pid, "postgresql": postmaster_pid(postgres)}, oracle.engine)


@contextlib.contextmanager
def graph_served(graph: Graph, scenario: Scenario, workers: int) -> Iterator[Served]:
    """The graph's service on ``graph``'s Neo4j, emptied and loaded with ``scenario``."""
    loader.load(graph, scenario, reset=True)
    with ServerProcess("graph", workers) as server:
        yield Served("graph", server.url, workers, f"Neo4j ({graph.uri})",
                     {"gunicorn": server.pid, "neo4j": neo4j_pid_for(graph.uri)}, graph)
