"""Small helpers that keep the notebooks short: connect, load a lesson's cloud,
run Cypher into a table.

The notebooks run with their own folder as the working directory, so scenario
files are found relative to the package, not to the notebook.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.graphdb.db import Graph
from workbench.engine import loader
from workbench.ids import derive_uuid
from workbench.report import provider_names as names
from workbench.scenario import Scenario, load_file

# derive_uuid and names are here for the notebooks: consumers are named by
# their derived UUID, and answers are printed with provider names.
__all__ = ["ROOT", "cypher", "derive_uuid", "names", "scenario_path", "start"]

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "data" / "scenarios"
FIXTURES = ROOT / "data" / "fixtures"


def scenario_path(name: str) -> Path:
    """``demo`` → data/scenarios/demo.yaml; ``fixtures/numa_network`` → data/fixtures/numa_network.yaml."""
    path = ROOT / "data" / f"{name}.yaml" if "/" in name else SCENARIOS / f"{name}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no scenario {name!r} (looked for {path})")
    return path


def start(scenario: str, **driver_options) -> tuple[Graph, Scenario]:
    """Connect to Neo4j, empty it, and load one scenario: every notebook begins here.

    ``driver_options`` go to the driver (the request builder's notebook asks for short timeouts)."""
    graph = Graph.connect(**driver_options)
    cloud = load_file(scenario_path(scenario))
    loader.load(graph, cloud, reset=True)
    print(f"Loaded '{cloud.name}': {len(cloud.providers)} providers, {len(cloud.consumers)} consumers.")
    return graph, cloud


def cypher(graph: Graph, query: str, **parameters) -> pd.DataFrame:
    """Run a read-only Cypher query; the records as a table."""
    return pd.DataFrame(graph.read(query, **parameters))
