"""Shared fixtures: a real Neo4j for the whole session, a clean graph per test.

If NEO4J_URI is set, that Neo4j is used (and emptied by the tests!); otherwise
a throwaway local Neo4j is started from the Maven-built launcher, on a free
port with its own data directory, and stopped at the end. The notebooks
(validated with nbval) reach the same server: its URI is exported as
NEO4J_URI before any notebook kernel starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from workbench.graphdb.db import Graph
from workbench.engine import loader
from workbench.scenario import Scenario, load_file

ROOT = Path(__file__).resolve().parent


_local_server = None


def ensure_neo4j(tmp_root: Path) -> str:
    """The URI of the Neo4j the tests use, starting a throwaway local one if needed."""
    global _local_server
    if os.environ.get("NEO4J_URI"):
        return os.environ["NEO4J_URI"]
    from workbench.graphdb.server import LocalNeo4j, free_port

    _local_server = LocalNeo4j(
        home=tmp_root / "neo4j", bolt_port=free_port(), http_port=None, heap="768m", pagecache="128m"
    )
    _local_server.start()
    _local_server.export_env()
    return _local_server.uri


def pytest_runtest_setup(item):
    # nbval cells are not functions and take no fixtures: start Neo4j for them here.
    if item.__class__.__name__ == "IPyNbCell":
        ensure_neo4j(item.config._tmp_path_factory.getbasetemp())


def pytest_sessionfinish(session):
    if _local_server is not None:
        _local_server.stop()
        for name in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"):
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def neo4j_uri(tmp_path_factory):
    return ensure_neo4j(tmp_path_factory.getbasetemp())


class LoadedGraph:
    """The session's graph, remembering which scenario it holds, so that
    read-only tests of one scenario load it once."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.loaded: str | None = None

    def fresh(self) -> Graph:
        self.graph.reset()
        self.loaded = None
        return self.graph

    def with_scenario(self, path: str | Path) -> tuple[Graph, Scenario]:
        scenario = load_file(ROOT / path)
        if self.loaded != scenario.source:
            loader.load(self.graph, scenario, reset=True)
            self.loaded = scenario.source
        return self.graph, scenario


@pytest.fixture(scope="session")
def session_graph(neo4j_uri):
    graph = Graph.connect(neo4j_uri)
    yield LoadedGraph(graph)
    graph.close()


@pytest.fixture
def graph(session_graph) -> Graph:
    """An empty graph (schema in place) for a test that writes."""
    return session_graph.fresh()


@pytest.fixture
def scenario_graph(session_graph):
    """``scenario_graph(path)`` -> (graph, scenario) loaded from a scenario file; read-only use."""
    return session_graph.with_scenario


CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def own_server(request, tmp_path_factory):
    """A throwaway Neo4j of the test module's own, for tests that kill it (the session's must live on)."""
    from workbench.graphdb.server import LocalNeo4j, free_port

    srv = LocalNeo4j(
        home=tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "neo4j",
        bolt_port=free_port(), http_port=None, heap="512m", pagecache="64m",
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    """A real Chromium (Debian's, never a downloaded build) driven by Playwright; skipped, saying why,
    when either is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the Python package 'playwright' is not installed (pip install playwright)"
    )
    if not CHROMIUM:
        pytest.skip("no Chromium found (apt-get install chromium, or set WORKBENCH_CHROMIUM to its path)")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's own sandbox refuses to start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
