"""Placement's own functional fixtures, asked Placement's own gabbi queries,
answered by both engines: the graph must give the real Placement's answers.

The scenarios in data/fixtures/ rebuild the topologies of placement's
tests/functional/fixtures/gabbits.py; the queries in tests/parity/*.yaml are
those the gabbi files ask, at microversion 1.39. Where a gabbi file states
how many candidates a query returns, that number is checked too, so the
expectation comes from Placement's own tests as well as from the running
Placement.
"""

from pathlib import Path

import pytest
import yaml

from workbench.comparison import parity
from workbench.comparison.oracle import PlacementOracle

PARITY_DIR = Path(__file__).parent / "parity"


def _cases():
    for path in sorted(PARITY_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        for case in spec["queries"]:
            yield pytest.param(spec["scenario"], case, id=f"{path.stem}::{case['name']}")


_oracles: dict[str, PlacementOracle] = {}


@pytest.fixture
def oracle_for():
    def get(scenario):
        if scenario.source not in _oracles:
            oracle = PlacementOracle()
            oracle.load(scenario)
            _oracles[scenario.source] = oracle
        return _oracles[scenario.source]

    yield get


@pytest.mark.parametrize("scenario_path, case", list(_cases()))
def test_same_answer_as_placement(scenario_graph, oracle_for, scenario_path, case):
    graph, scenario = scenario_graph(scenario_path)
    oracle = oracle_for(scenario)
    query = parity.resolve_placeholders(case["query"], scenario)
    names = {p.uuid: p.name for p in scenario.providers}

    verdict = parity.compare(graph, oracle, query, names)

    assert verdict.status == case["status"], f"Placement itself answered {verdict.status}: {verdict.placement}"
    assert verdict.acceptable, verdict.difference
    if "candidates" in case:
        assert len(verdict.ours["allocation_requests"]) == case["candidates"]
