"""Why not? The explanations and the funnel, proved against the real Placement.

1. **Exactly the missing providers.** For every query of the parity fixtures
   (tests/parity/*.yaml on data/fixtures/*.yaml), and for the README's kind of
   queries on the demo clouds (data/scenarios/*.yaml), every provider of the cloud
   is explained: it gets reasons exactly when the real Placement
   (:mod:`workbench.comparison.oracle`) leaves it out of every candidate (out of every
   group's mappings: a provider that only meets a resourceless group counts as
   used). With ``limit``, Placement keeps an arbitrary first N, so there the
   truth is its answer without the limit, and a provider cut off only by the
   limit must be explained by ``limit`` alone. Where the engines differ by a
   named Placement bug (workbench.comparison.parity.DIVERGENCES), the graph's answer is
   the truth, as the parity tests establish.
2. **Counterfactuals.** Small clouds where one named cause excludes a
   provider: remove that cause (raise the capacity, add the trait, join the
   aggregate, make the amount a multiple of step_size, ...) and the real
   Placement then offers the provider, or the next named cause is the only
   one left.
3. **Generated clouds** (hypothesis, tests/strategies.py): the check of (1)
   on random clouds and queries, a few examples so that CI stays fast.

No explanation may say "unexplained": that is the explanation admitting that
the engine left a provider out for a reason no rule names.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from strategies import cloud_and_queries
from workbench.comparison import parity
from workbench.cli import main as cli
from workbench.engine import candidates, loader
from workbench.engine.errors import BadRequest, NotFound, PlacementError
from workbench.engine.request import build_query
from workbench.engine.why_not import first_reasons, funnel, why_not, why_not_each
from workbench.comparison.oracle import PlacementOracle
from workbench.scenario import Scenario, parse

ROOT = Path(__file__).resolve().parent.parent
PARITY_DIR = Path(__file__).parent / "parity"


# -- (1) exactly the providers Placement leaves out -------------------------------------------
def _uses(body: dict, uuid: str) -> bool:
    """Is the provider in some candidate, for resources or for a resourceless group?"""
    return any(uuid in providers for ar in body["allocation_requests"] for providers in ar["mappings"].values())


def _truth(graph, oracle: PlacementOracle, query: str, names: dict) -> dict | None:
    """The right answer to ``query`` (None: not a 200): Placement's, or the graph's where
    a named Placement bug explains the difference (as the parity tests establish)."""
    verdict = parity.compare(graph, oracle, query, names)
    assert verdict.acceptable, verdict.difference
    status, body = (verdict.status, verdict.placement) if verdict.agrees else (verdict.ours_status, verdict.ours)
    return body if status == 200 else None


def _explanation_problems(graph, oracle: PlacementOracle, scenario: Scenario, query: str) -> list[str]:
    """Every way the explanations of every provider disagree with Placement's answer."""
    names = {p.uuid: p.name for p in scenario.providers}
    pairs = parse_qsl(query, keep_blank_values=True)
    limited = any(k == "limit" for k, _ in pairs)
    answer = _truth(graph, oracle, query, names)
    if answer is None:  # a bad request: why-not refuses it as the search does
        with pytest.raises(PlacementError):
            why_not_each(graph, query)
        return []
    if limited:  # Placement's first N are arbitrary: the graph's are the ones to explain
        answer = candidates.find(graph, query)
    full = _truth(graph, oracle, build_query([(k, v) for k, v in pairs if k != "limit"]), names) if limited else answer
    problems = []
    for e in why_not_each(graph, query):
        rules = [r.rule for r in e.reasons]
        if e.excluded == _uses(answer, e.provider):
            problems.append(f"{e.name}: excluded={e.excluded} but the answer uses it={_uses(answer, e.provider)}")
        elif e.excluded and not rules:
            problems.append(f"{e.name}: excluded without a reason")
        elif not e.excluded and rules:
            problems.append(f"{e.name}: in a candidate, yet reasons {rules}")
        elif e.excluded and (rules == ["limit"]) != _uses(full, e.provider):
            problems.append(f"{e.name}: reasons {rules}, but without the limit it is used={_uses(full, e.provider)}")
        if "unexplained" in rules:
            problems.append(f"{e.name}: {e}")
    problems += _funnel_problems(graph, query, answer)
    return [f"{query}: {p}" for p in problems]


def _funnel_problems(graph, query: str, answer: dict) -> list[str]:
    """The funnel counts the same answer, names a stage exactly when it is empty, and
    never counts more providers after a rule than before it."""
    dry = funnel(graph, query)
    problems = []
    if dry.candidates != len(answer["allocation_requests"]):
        problems.append(f"funnel: {dry.candidates} candidates, the answer {len(answer['allocation_requests'])}")
    if (dry.emptied_at is None) != bool(answer["allocation_requests"]):
        problems.append(f"funnel: emptied at {dry.emptied_at!r} with {dry.candidates} candidates")
    for group in dry.groups:
        counts = [s.count for s in group.stages if s.unit == "providers"]
        if counts != sorted(counts, reverse=True):
            problems.append(f"funnel: {group.suffix!r} counts grow: {[s.to_dict() for s in group.stages]}")
    return problems


def _parity_files():
    return [pytest.param(path, id=path.stem) for path in sorted(PARITY_DIR.glob("*.yaml"))]


@pytest.mark.parametrize("path", _parity_files())
def test_explained_exactly_when_placement_leaves_it_out(scenario_graph, path):
    spec = yaml.safe_load(path.read_text())
    graph, scenario = scenario_graph(spec["scenario"])
    problems = []
    with PlacementOracle() as oracle:
        oracle.load(scenario)
        for case in spec["queries"]:
            query = parity.resolve_placeholders(case["query"], scenario)
            problems += _explanation_problems(graph, oracle, scenario, query)
    assert not problems, "\n".join(problems)


# The demo clouds of data/scenarios/, asked what the README and the notebooks ask.
DEMO_QUERIES = [
    "resources=VCPU:1",
    "resources=VCPU:2,MEMORY_MB:2048&required=HW_CPU_X86_AVX2",
    "resources=VCPU:2,MEMORY_MB:300,DISK_GB:25",
    "resources=VCPU:40",
    "resources=CUSTOM_BAREMETAL_GOLD:1",
    "resources1=VCPU:2,MEMORY_MB:1024&required1=HW_NUMA_ROOT&resources2=SRIOV_NET_VF:1"
    "&required2=CUSTOM_PHYSNET_PUBLIC&same_subtree=1,2&group_policy=none",
    "resources=VCPU:1&resources1=VGPU:1&required1=CUSTOM_NVIDIA_A40_8Q&limit=1",
]


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "data" / "scenarios").glob("*.yaml")))
def test_demo_clouds_explained_exactly_when_left_out(scenario_graph, path):
    graph, scenario = scenario_graph(f"data/scenarios/{path}")
    problems = []
    with PlacementOracle() as oracle:
        oracle.load(scenario)
        for query in DEMO_QUERIES:
            problems += _explanation_problems(graph, oracle, scenario, query)
    assert not problems, "\n".join(problems)


# -- (3) the same on generated clouds ---------------------------------------------------------
@settings(
    max_examples=int(os.environ.get("WHY_NOT_EXAMPLES", "6")),  # more for exploring; few keep CI fast
    derandomize=not os.environ.get("WHY_NOT_RANDOM"),
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking one failure takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cloud_and_queries(min_queries=4, max_queries=8))
def test_generated_clouds_explained_exactly_when_left_out(graph, case):
    cloud, queries = case
    scenario = parse(cloud.document, source="<generated>")
    loader.load(graph, scenario, reset=True)
    problems = []
    with PlacementOracle() as oracle:
        oracle.load(scenario)
        for query in queries:
            resolved = parity.resolve_placeholders(query.text, scenario)
            problems += _explanation_problems(graph, oracle, scenario, resolved)
    assert not problems, yaml.safe_dump(cloud.document, sort_keys=False) + "\n" + "\n".join(problems)


# -- (2) counterfactuals: remove the named cause ------------------------------------------------
# Each case: a cloud, a query, the provider asked about and the rules that must
# name its exclusion (with a phrase of the text, numbers included); then the
# same question with that cause removed, and the rules left (none: Placement
# now offers the provider). The expected rules come from the cloud as written:
# e.g. cn1 has 4 VCPU with 3 used, so 2 more do not fit.

HOSTS = """
traits: [CUSTOM_GOLD]
providers:
- name: cn1
  traits: [HW_CPU_X86_AVX2]
  aggregates: [aggA]
  inventories:
    VCPU: {total: 4}
    MEMORY_MB: {total: 4096, step_size: 256}
- name: cn2
  inventories: {VCPU: 8, MEMORY_MB: 8192}
consumers:
- name: vm1
  project: p
  user: u
  allocations: {cn1: {VCPU: 3}}
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


NUMA = """
providers:
- name: host
  traits: [HW_CPU_X86_AVX2]
  children:
  - name: numa0
    inventories: {VCPU: {total: 2}}
  - name: numa1
    children:
    - name: pf1
      inventories: {SRIOV_NET_VF: 4}
"""

SHARED = """
providers:
- name: cn1
  aggregates: [aggA]
  inventories: {VCPU: 4}
- name: cn2
  inventories: {VCPU: 4}
- name: ss1
  traits: [MISC_SHARES_VIA_AGGREGATE]
  aggregates: [aggA]
  inventories: {DISK_GB: 100}
"""

COUNTERFACTUALS = {
    # name: (cloud, query, provider, rules, phrase, fixed cloud, fixed query, rules left)
    "capacity": (HOSTS, "resources=VCPU:2", "cn1", ["capacity"], "VCPU: 3 of 4 used, 2 asked",
                 _edit(HOSTS, "VCPU: {total: 4}", "VCPU: {total: 5}"), None, []),
    "step_size": (HOSTS, "resources=MEMORY_MB:300", "cn1", ["step_size"], "300 is not a multiple of step_size 256",
                  HOSTS, "resources=MEMORY_MB:256", []),
    "step_size, then capacity": (HOSTS, "resources=VCPU:2,MEMORY_MB:300", "cn1", ["step_size", "capacity"],
                                 "step_size 256", HOSTS, "resources=VCPU:2,MEMORY_MB:512", ["capacity"]),
    "min_unit": (_edit(HOSTS, "VCPU: 8,", "VCPU: {total: 8, min_unit: 2},"), "resources=VCPU:1", "cn2",
                 ["min_unit"], "1 asked is below min_unit 2", HOSTS, None, []),
    "max_unit": (_edit(HOSTS, "VCPU: 8,", "VCPU: {total: 8, max_unit: 2},"), "resources=VCPU:3", "cn2",
                 ["max_unit"], "3 asked is above max_unit 2", HOSTS, None, []),
    "parked": (_edit(HOSTS, "VCPU: 8,", "VCPU: {total: 8, reserved: 8},"), "resources=VCPU:1", "cn2",
               ["parked"], "reserved 8 == total 8", HOSTS, None, []),
    "no inventory": (HOSTS, "resources=VCPU:1,DISK_GB:10", "cn2", ["no_inventory"], "cn2 has no DISK_GB",
                     _edit(HOSTS, "VCPU: 8, MEMORY_MB: 8192", "VCPU: 8, MEMORY_MB: 8192, DISK_GB: 10"), None, []),
    "required trait": (HOSTS, "resources=VCPU:1&required=HW_CPU_X86_AVX2", "cn2", ["required_trait"],
                       "lacks the required trait HW_CPU_X86_AVX2",
                       _edit(HOSTS, "- name: cn2\n", "- name: cn2\n  traits: [HW_CPU_X86_AVX2]\n"), None, []),
    "forbidden trait": (HOSTS, "resources=VCPU:1&required=!HW_CPU_X86_AVX2", "cn1", ["forbidden_trait"],
                        "has the forbidden trait(s) HW_CPU_X86_AVX2",
                        _edit(HOSTS, "traits: [HW_CPU_X86_AVX2]\n", "traits: []\n"), None, []),
    "any-of traits": (HOSTS, "resources=VCPU:1&required=in:CUSTOM_GOLD,HW_CPU_X86_SSE", "cn2", ["any_of_traits"],
                      "none of the traits in:CUSTOM_GOLD, HW_CPU_X86_SSE",
                      _edit(HOSTS, "- name: cn2\n", "- name: cn2\n  traits: [CUSTOM_GOLD]\n"), None, []),
    "member_of": (HOSTS, "resources=VCPU:1&member_of={aggA}", "cn2", ["member_of"], "cn2 is not in aggregate aggA",
                  _edit(HOSTS, "- name: cn2\n", "- name: cn2\n  aggregates: [aggA]\n"), None, []),
    "forbidden aggregate": (HOSTS, "resources=VCPU:1&member_of=!{aggA}", "cn1", ["forbidden_aggregate"],
                            "cn1 is in the forbidden aggregate aggA",
                            _edit(HOSTS, "aggregates: [aggA]", "aggregates: []"), None, []),
    "in_tree": (HOSTS, "resources=VCPU:1&in_tree={cn1}", "cn2", ["in_tree"], "cn2 is outside in_tree cn1",
                HOSTS, "resources=VCPU:1&in_tree={cn2}", []),
    "root_required": (NUMA, "resources=VCPU:1&root_required=!HW_CPU_X86_AVX2", "numa0", ["root_required"],
                      "the root host has the forbidden HW_CPU_X86_AVX2",
                      _edit(NUMA, "traits: [HW_CPU_X86_AVX2]", "traits: []"), None, []),
    "required trait on no provider used": (
        NUMA, "resources=VCPU:1&required=HW_CPU_X86_AVX2", "numa0", ["required_trait"],
        "HW_CPU_X86_AVX2 is on none of the providers that could serve the group together with numa0",
        _edit(NUMA, "  - name: numa0\n", "  - name: numa0\n    traits: [HW_CPU_X86_AVX2]\n"), None, []),
    "a class the tree lacks": (NUMA, "resources=VCPU:1,MEMORY_MB:128", "numa0", ["tree_lacks_class"],
                               "the tree of host cannot give MEMORY_MB 128",
                               _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 2}, MEMORY_MB: 128}"), None, []),
    "a class short in its own tree": (
        _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 2}, MEMORY_MB: 128}"), "resources=VCPU:1,MEMORY_MB:256",
        "numa0", ["capacity", "tree_lacks_class"], "MEMORY_MB: 0 of 128 used, 256 asked",
        _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 2}, MEMORY_MB: 256}"), None, []),
    "sharing provider in no aggregate with the tree": (
        SHARED, "resources=VCPU:1,DISK_GB:10", "cn2", ["tree_lacks_class"],
        "ss1 have room but share no aggregate with it",
        _edit(SHARED, "- name: cn2\n", "- name: cn2\n  aggregates: [aggA]\n"), None, []),
    "sharing provider sharing with no tree": (
        _edit(SHARED, "  aggregates: [aggA]\n  inventories: {VCPU: 4}", "  inventories: {VCPU: 4}"),
        "resources=VCPU:1,DISK_GB:10", "ss1", ["sharing", "tree_lacks_class"],
        "ss1 shares through aggregates, but no other tree is in an aggregate with it", SHARED, None, []),
    "another group finds nothing in the tree": (
        SHARED, "resources=VCPU:1&resources1=DISK_GB:10", "cn2", ["no_inventory", "other_group"],
        "group '1' finds nothing in the tree of cn2",
        _edit(SHARED, "- name: cn2\n", "- name: cn2\n  aggregates: [aggA]\n"), None, []),
    "isolate": (NUMA, "resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate", "numa0", ["isolate"],
                "group_policy=isolate: group '1' and group '2' would both use numa0",
                NUMA, "resources1=VCPU:1&resources2=VCPU:1&group_policy=none", []),
    "combined amounts over capacity": (
        NUMA, "resources1=VCPU:2&resources2=VCPU:1&group_policy=none", "numa0", ["combined_capacity"],
        "group '1' and group '2' together ask 3 VCPU of numa0: 0 of 2 used",
        _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 3}}"), None, []),
    "combined amounts over max_unit": (
        _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 4, max_unit: 2}}"),
        "resources1=VCPU:2&resources2=VCPU:1&group_policy=none", "numa0", ["combined_max_unit"],
        "group '1' and group '2' together ask 3 VCPU of numa0: above max_unit 2",
        _edit(NUMA, "{VCPU: {total: 2}}", "{VCPU: {total: 4, max_unit: 3}}"), None, []),
    "same_subtree": (
        NUMA, "resources1=VCPU:1&resources2=SRIOV_NET_VF:1&group_policy=none&same_subtree=1,2", "numa0",
        ["no_inventory", "same_subtree"], "none of numa0, pf1 is an ancestor of all the others",
        _edit(NUMA, "    children:\n    - name: pf1\n      inventories: {SRIOV_NET_VF: 4}\n", "")
        .replace("    inventories: {VCPU: {total: 2}}\n",
                 "    inventories: {VCPU: {total: 2}}\n    children:\n    - name: pf1\n"
                 "      inventories: {SRIOV_NET_VF: 4}\n"), None, []),
    # With a limit the graph searches the trees in UUID order: cn2's (52a1...) before cn1's (9374...).
    "limit": (HOSTS, "resources=VCPU:1&limit=1", "cn1", ["limit"], "without it there are 2 candidate(s)",
              HOSTS, "resources=VCPU:1", []),
}


def _load_both(graph, text: str):
    scenario = parse(yaml.safe_load(text), source="<counterfactual>")
    loader.load(graph, scenario, reset=True)
    oracle = PlacementOracle()
    oracle.load(scenario)
    return scenario, oracle


def _placement_uses(oracle, scenario, query: str, name: str) -> bool:
    status, body = oracle.allocation_candidates(query)
    assert status == 200, body
    return _uses(body, scenario.provider(name).uuid)


@pytest.mark.parametrize("case", sorted(COUNTERFACTUALS))
def test_removing_the_named_cause(graph, case):
    cloud, query, name, rules, phrase, fixed_cloud, fixed_query, left = COUNTERFACTUALS[case]
    scenario, oracle = _load_both(graph, cloud)
    with oracle:
        query = parity.resolve_placeholders(query, scenario)
        if rules != ["limit"]:  # with a limit Placement may pick any N: the limit case is the graph's own
            assert not _placement_uses(oracle, scenario, query, name), "Placement offers it: nothing to explain"
        explanation = why_not(graph, query, name)
        assert explanation.excluded
        assert sorted({r.rule for r in explanation.reasons}) == sorted(rules), str(explanation)
        assert any(phrase in r.text for r in explanation.reasons), f"{phrase!r} not in:\n{explanation}"

    scenario, oracle = _load_both(graph, fixed_cloud)
    with oracle:
        query = parity.resolve_placeholders(fixed_query or query, scenario)
        fixed = why_not(graph, query, name)
        assert sorted({r.rule for r in fixed.reasons}) == sorted(left), str(fixed)
        assert _placement_uses(oracle, scenario, query, name) == (not left)
        assert fixed.excluded == bool(left)


def test_every_rule_is_named_at_once(graph):
    """Several causes at once are all listed: the amount breaks min_unit and step_size
    and does not fit; another class is missing altogether."""
    cloud = _edit(HOSTS, "VCPU: 8,", "VCPU: {total: 8, min_unit: 4, step_size: 4},")
    scenario = parse(yaml.safe_load(cloud))
    loader.load(graph, scenario, reset=True)
    explanation = why_not(graph, "resources=VCPU:10,DISK_GB:1", "cn2")
    assert {r.rule for r in explanation.reasons} == {"step_size", "capacity", "no_inventory"}, str(explanation)
    explanation = why_not(graph, "resources=VCPU:3", "cn2")
    assert {r.rule for r in explanation.reasons} == {"min_unit", "step_size"}, str(explanation)


# -- naming the provider; the funnel; the command line ---------------------------------------
def test_provider_by_uuid_or_name_and_refusals(scenario_graph):
    graph, scenario = scenario_graph("data/scenarios/demo.yaml")
    bm3 = scenario.provider("bm3").uuid
    by_name = why_not(graph, "resources=CUSTOM_BAREMETAL_GOLD:1", "bm3")
    by_uuid = why_not(graph, "resources=CUSTOM_BAREMETAL_GOLD:1", bm3)
    assert by_name.to_dict() == by_uuid.to_dict()
    assert [r.rule for r in by_name.reasons] == ["parked"]  # demo.yaml: bm3 is parked for cleaning
    marks = first_reasons(graph, "resources=CUSTOM_BAREMETAL_GOLD:1")  # for the drawing: every faded provider
    assert bm3 in marks and scenario.provider("bm1").uuid not in marks
    assert len(marks) == len(scenario.providers) - 1  # bm1, the only GOLD node not parked, is the one candidate
    with pytest.raises(NotFound, match="nosuch"):
        why_not(graph, "resources=VCPU:1", "nosuch")
    with pytest.raises(BadRequest, match="No such resource class"):
        why_not(graph, "resources=CUSTOM_NOPE:1", "bm3")


def test_funnel_names_the_stage_that_emptied_each_group(scenario_graph):
    graph, _ = scenario_graph("data/scenarios/demo.yaml")
    # demo.yaml: VCPU max_unit is 16 on every NUMA node and 32 on the GPU hosts, so 40 VCPU fit nowhere.
    dry = funnel(graph, "resources=VCPU:40")
    assert dry.candidates == 0
    assert dry.emptied_at == "the unsuffixed group: pass min_unit / max_unit / step_size"
    stages = {s.name: s.count for s in dry.groups[0].stages}
    assert stages["have the class"] == 6  # 4 NUMA nodes and 2 GPU hosts have VCPU
    # Each group fine alone, but isolate forbids the only GOLD bare-metal node serving both groups.
    dry = funnel(graph, "resources1=CUSTOM_BAREMETAL_GOLD:1&resources2=CUSTOM_BAREMETAL_GOLD:1&group_policy=isolate")
    assert dry.candidates == 0
    assert dry.emptied_at.startswith("the groups together")
    assert funnel(graph, "resources=VCPU:1").emptied_at is None


def test_cli_why_not_and_funnel(scenario_graph, capsys):
    scenario_graph("data/scenarios/demo.yaml")
    assert cli(["candidates", "resources=CUSTOM_BAREMETAL_GOLD:1", "--why-not", "bm3", "--why-not", "bm1"]) == 0
    out = capsys.readouterr().out
    assert "why not bm3" in out and "reserved 1 == total 1" in out
    assert "why not bm1" in out and "nothing to explain" in out
    assert cli(["candidates", "resources=VCPU:40", "--why-not", "gpu1", "--json"]) == 0
    body = yaml.safe_load(capsys.readouterr().out)  # JSON is YAML
    assert body["why_not"][0]["provider"]["name"] == "gpu1"
    assert body["why_not"][0]["groups"][0]["reasons"][0]["rule"] == "max_unit"
    assert body["funnel"]["candidates"] == 0
    assert cli(["candidates", "resources=VCPU:40", "--explain", "--why-not", "gpu1"]) == 0
    out = capsys.readouterr().out
    assert "where the search ran dry:" in out and "emptied at the unsuffixed group" in out
    assert "// provider_facts:" in out and "// class_holders:" in out  # the explanations' Cypher is shown too
