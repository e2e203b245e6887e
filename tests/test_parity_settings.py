"""Parity with the real Placement under its non-default settings, so that bugs behind a setting are seen.

The fixture parity queries (tests/parity/*.yaml, asked of Placement's own functional fixtures) are asked
again of Placement 16.0.0 run with each of the settings that change how it generates allocation candidates
(:data:`workbench.comparison.oracle.NON_DEFAULT_SETTINGS`):

* ``[placement] allocation_candidates_generation_strategy = breadth-first`` changes only the order in which
  candidates are generated, so the answer must be the same set as the graph's;
* ``[workarounds] optimize_for_wide_provider_trees = True`` prunes combinations early; the answer must
  still be the same set (where it is not, the difference must be a named Placement bug, as in
  tests/test_parity_fixtures.py);
* ``[placement] max_allocation_candidates = 2`` keeps the first 2 candidates Placement generates, so the
  answer must be 2 (or fewer, if there are fewer) of the graph's, with summaries for exactly their trees.

The graph engine has no such settings: its answer is the same under all of them.
"""

from pathlib import Path

import pytest
import yaml

from workbench.comparison import parity
from workbench.comparison.oracle import NON_DEFAULT_SETTINGS, PlacementOracle
from workbench.engine import candidates, loader
from workbench.scenario import parse

PARITY_DIR = Path(__file__).parent / "parity"


def _cases():
    for path in sorted(PARITY_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        yield spec["scenario"], path.stem, spec["queries"]


@pytest.mark.parametrize("scenario_path, file, queries", list(_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_same_answers_as_placement_under_each_setting(scenario_graph, scenario_path, file, queries):
    graph, scenario = scenario_graph(scenario_path)  # loaded once, asked under every setting
    names = {p.uuid: p.name for p in scenario.providers}
    ask = parity.GraphAnswers(graph)  # the graph has no settings: ask it each query once
    problems = []
    for setting, options in sorted(NON_DEFAULT_SETTINGS.items()):
        cap = options.get("placement", {}).get("max_allocation_candidates")
        with PlacementOracle(settings=options) as oracle:
            oracle.load_bulk(scenario)
            for case in queries:
                query = parity.resolve_placeholders(case["query"], scenario)
                if cap is None:
                    verdict = parity.compare(graph, oracle, query, names, ask)
                else:
                    verdict = parity.compare_capped(graph, oracle, query, cap, names, ask)
                where = f"{setting}: {case['name']}"
                if verdict.status != case["status"]:
                    problems.append(f"{where}: Placement answered {verdict.status}: {verdict.placement}")
                elif not verdict.acceptable:
                    problems.append(f"{where}: {verdict.difference}")
    assert not problems, "\n".join(problems)


def test_settings_apply_to_their_oracle_only():
    with PlacementOracle(settings=NON_DEFAULT_SETTINGS["wide_provider_trees"]) as wide, PlacementOracle() as plain:
        assert wide.config()["optimize_for_wide_provider_trees"] is True
        assert plain.config()["optimize_for_wide_provider_trees"] is False


# 4 VCPU, 2 of them used; 3 more asked for over two groups cannot fit (the fifth upstream bug's cloud).
BUSY_NODE = parse(
    {
        "providers": [{"name": "cn", "inventories": {"VCPU": 4}}],
        "consumers": [{"name": "vm", "project": "p", "user": "u", "allocations": {"cn": {"VCPU": 2}}}],
    }
)
SPLIT_REQUEST = "resources1=VCPU:2&resources2=VCPU:1&group_policy=none"


def test_a_bug_behind_a_setting_is_seen_and_named(graph):
    loader.load(graph, BUSY_NODE, reset=True)
    assert candidates.find(graph, SPLIT_REQUEST)["allocation_requests"] == []
    with PlacementOracle() as plain:
        plain.load(BUSY_NODE)
        assert parity.compare(graph, plain, SPLIT_REQUEST).agrees
    with PlacementOracle(settings=NON_DEFAULT_SETTINGS["wide_provider_trees"]) as wide:
        wide.load(BUSY_NODE)
        verdict = parity.compare(graph, wide, SPLIT_REQUEST)
        # Placement offers cn{VCPU: 3} with only 2 free; with usage counted it agrees with the graph.
        assert [r["allocations"] for r in verdict.placement["allocation_requests"]] == [
            {BUSY_NODE.providers[0].uuid: {"resources": {"VCPU": 3}}}
        ]
        assert verdict.divergence == parity.WIDE_TREES_USAGE_BUG


def test_a_capped_answer_must_be_as_long_as_the_cap_allows(graph):
    cloud = parse({"providers": [{"name": f"cn{n}", "inventories": {"VCPU": 4}} for n in range(3)]})
    loader.load(graph, cloud, reset=True)
    with PlacementOracle(settings=NON_DEFAULT_SETTINGS["max_allocation_candidates"]) as capped:
        capped.load(cloud)
        assert parity.compare_capped(graph, capped, "resources=VCPU:1", 2).agrees
        # Judged as if the cap were 3, Placement's 2 candidates are too few: the rule has teeth.
        verdict = parity.compare_capped(graph, capped, "resources=VCPU:1", 3)
        assert "expected 3 candidates, got 2" in verdict.difference
