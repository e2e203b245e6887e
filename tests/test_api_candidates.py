"""``GET /allocation_candidates`` over the REST API, at every microversion that changed it,
and the gabbi fixtures' topologies (workbench.conformance.topologies).

The main check asks the same question of the graph's HTTP app and of the real
Placement 16.0.0 (workbench.comparison.oracle, in-process on SQLite) loaded from the same
fixture scenario, at the same microversion, and wants the same status and the
same body (order-free, workbench.comparison.compare) or the same error text. The cases
cover each response shape Placement's handler has (1.10 lists, 1.12 dicts,
1.17 traits, 1.27 all classes, 1.29 trees, 1.34 mappings) and the syntax each
version added, asked one version too early as well. The other tests state
Placement's documented behaviour directly, with the reasoning in each.
"""

from __future__ import annotations

import os
import uuid

import pytest
import webob

from workbench.comparison import compare
from workbench.api.app import make_app, make_conf
from workbench.conformance import topologies
from workbench.comparison.oracle import PlacementOracle

ADMIN = {"x-auth-token": "admin"}

# (fixture scenario, query with {name} placeholders for provider/aggregate UUIDs, microversions)
CASES = [
    # Response shapes: a flat cloud with sharing storage and traits.
    ("granular", "resources=VCPU:1,DISK_GB:10", ["1.10", "1.12", "1.16", "1.17", "1.26", "1.27", "1.34", "1.39"]),
    ("granular", "resources=VCPU:1,MEMORY_MB:1024&limit=1", ["1.16"]),
    ("granular", "resources=VCPU:1&required=HW_CPU_X86_AVX", ["1.16", "1.17"]),
    ("granular", "resources=VCPU:1&required=!HW_CPU_X86_AVX", ["1.21", "1.22"]),
    ("granular", "resources=VCPU:1&required=HW_CPU_X86_AVX&required=HW_CPU_X86_SSE", ["1.38", "1.39"]),
    ("granular", "resources=VCPU:1&required=in:HW_CPU_X86_SSE,HW_CPU_X86_MMX", ["1.38", "1.39"]),
    ("granular", "resources=VCPU:1,DISK_GB:10&member_of={aggA}", ["1.20", "1.21"]),
    ("granular", "resources=VCPU:1&member_of={aggA}&member_of={aggB}", ["1.23", "1.24"]),
    ("granular", "resources=VCPU:1,DISK_GB:10&member_of=!{aggB}", ["1.31", "1.32"]),
    ("granular", "resources1=VCPU:1&resources2=DISK_GB:10&group_policy=isolate", ["1.24", "1.25", "1.34"]),
    ("granular", "resources_CPU=VCPU:1&resources_DISK=DISK_GB:10&group_policy=none", ["1.32", "1.33", "1.34"]),
    ("granular", "resources=VCPU:1&required1=HW_CPU_X86_AVX", ["1.35", "1.36"]),
    ("granular", "resources=VCPU:1&member_of1={aggA}", ["1.35"]),
    ("granular", "resources=VCPU:1&required=HW_CPU_X86_AVX&required=!HW_CPU_X86_AVX", ["1.22"]),
    ("granular", "resources=VCPU:1&required=CUSTOM_NOT_A_TRAIT", ["1.17"]),
    ("granular", "resources=CUSTOM_NOT_A_CLASS:1", ["1.10"]),
    # Trees: before 1.29 a candidate may not take from two providers of one tree.
    ("numa_network", "resources=VCPU:1,FPGA:1", ["1.28", "1.29"]),
    ("numa_network", "resources=VCPU:1,DISK_GB:10", ["1.28", "1.29"]),
    ("numa_network", "resources=CUSTOM_VF:1&in_tree={cn2}", ["1.30", "1.31"]),
    ("numa_network", "resources=VCPU:1&root_required=COMPUTE_VOLUME_MULTI_ATTACH", ["1.34", "1.35"]),
    (
        "numa_network",
        "resources_CPU=VCPU:1&resources_FPGA=FPGA:1&required_NUMA=HW_NUMA_ROOT"
        "&same_subtree=_CPU,_FPGA,_NUMA&group_policy=none",
        ["1.35", "1.36", "1.39"],
    ),
]


def _cases():
    for scenario, query, versions in CASES:
        for version in versions:
            yield pytest.param(scenario, query, version, id=f"{scenario}-{version}-{query}")


_oracles: dict[str, PlacementOracle] = {}


def _oracle(scenario) -> PlacementOracle:
    if scenario.source not in _oracles:
        oracle = PlacementOracle()
        oracle.load(scenario)
        _oracles[scenario.source] = oracle
    return _oracles[scenario.source]


def _get(app, query: str, version: str, headers: dict | None = None) -> webob.Response:
    request = webob.Request.blank(
        f"/allocation_candidates?{query}",
        headers={**ADMIN, "openstack-api-version": f"placement {version}", **(headers or {})},
    )
    return request.get_response(app)


def _with_uuids(query: str, scenario) -> str:
    names = {p.name: p.uuid for p in scenario.providers}
    names.update({name: aggregate for aggregate, name in scenario.aggregate_names.items()})
    return query.format(**names)


@pytest.mark.parametrize("scenario_name, query, version", list(_cases()))
def test_same_answer_as_placement(scenario_graph, scenario_name, query, version):
    graph, scenario = scenario_graph(f"data/fixtures/{scenario_name}.yaml")
    query = _with_uuids(query, scenario)

    ours = _get(make_app(make_conf(), graph), query, version)
    status, theirs = _oracle(scenario).allocation_candidates(query, version)

    assert ours.status_int == status, (ours.json, theirs)
    if status != 200:
        assert ours.json["errors"][0]["detail"] == theirs["errors"][0]["detail"]
        return
    if "limit=" in query:
        # Placement returns the first N of an undefined order: compare the shape only.
        assert len(ours.json["allocation_requests"]) == len(theirs["allocation_requests"])
        return
    assert compare.normalise_candidates(ours.json) == compare.normalise_candidates(theirs)


# -- the shapes, stated -------------------------------------------------------------


def test_before_1_12_allocations_are_a_list_and_summaries_have_only_requested_classes(scenario_graph):
    graph, scenario = scenario_graph("data/fixtures/granular.yaml")
    cn_left = scenario.provider("cn_left").uuid

    body = _get(make_app(make_conf(), graph), "resources=VCPU:1", "1.10").json

    # cn_left, cn_middle and cn_right each have VCPU: three single-provider candidates.
    assert len(body["allocation_requests"]) == 3
    assert {"allocations": [{"resource_provider": {"uuid": cn_left}, "resources": {"VCPU": 1}}]} in body[
        "allocation_requests"
    ]
    # Before 1.27 only the classes asked for; before 1.17 no traits; before 1.29 no tree.
    assert body["provider_summaries"][cn_left] == {"resources": {"VCPU": {"capacity": 8, "used": 0}}}


def test_nested_candidates_appear_from_1_29(scenario_graph):
    graph, scenario = scenario_graph("data/fixtures/numa_network.yaml")
    app = make_app(make_conf(), graph)
    # VCPU lives in cn1's NUMA cells, FPGA in their children; cn2 has VCPU but no FPGA.
    # Every candidate takes from two providers of cn1's tree, which a client before
    # 1.29 cannot be shown.
    assert _get(app, "resources=VCPU:1,FPGA:1", "1.28").json == {"allocation_requests": [], "provider_summaries": {}}
    body = _get(app, "resources=VCPU:1,FPGA:1", "1.29").json
    cn1 = scenario.provider("cn1").uuid
    # numa0 with fpga0, numa1 with fpga1_0 or fpga1_1, and across cells (any NUMA
    # cell's VCPU with any FPGA): 2 cells x 3 FPGAs.
    assert len(body["allocation_requests"]) == 6
    assert {s["root_provider_uuid"] for s in body["provider_summaries"].values()} == {cn1}


def test_mappings_from_1_34(scenario_graph):
    graph, scenario = scenario_graph("data/fixtures/granular.yaml")
    app = make_app(make_conf(), graph)
    query = "resources_CPU=VCPU:1&required_CPU=HW_CPU_X86_SSE"
    # Only cn_middle has HW_CPU_X86_SSE.
    cn_middle = scenario.provider("cn_middle").uuid
    assert _get(app, query, "1.33").json["allocation_requests"] == [
        {"allocations": {cn_middle: {"resources": {"VCPU": 1}}}}
    ]
    assert _get(app, query, "1.34").json["allocation_requests"] == [
        {"allocations": {cn_middle: {"resources": {"VCPU": 1}}}, "mappings": {"_CPU": [cn_middle]}}
    ]


def test_route_and_headers_by_version(scenario_graph):
    graph, _ = scenario_graph("data/fixtures/granular.yaml")
    app = make_app(make_conf(), graph)
    assert _get(app, "resources=VCPU:1", "1.9").status_int == 404  # the route came in 1.10
    old = _get(app, "resources=VCPU:1", "1.14")
    assert "cache-control" not in old.headers and "last-modified" not in old.headers
    new = _get(app, "resources=VCPU:1", "1.15")
    assert new.headers["cache-control"] == "no-cache" and "last-modified" in new.headers


def test_syntax_from_a_later_version_is_refused_with_placements_words(scenario_graph):
    graph, _ = scenario_graph("data/fixtures/granular.yaml")
    app = make_app(make_conf(), graph)
    # limit came in 1.16: the 1.15 query schema does not know it.
    early = _get(app, "resources=VCPU:1&limit=1", "1.15")
    assert early.status_int == 400
    assert "Additional properties are not allowed ('limit' was unexpected)" in early.json["errors"][0]["detail"]
    # Forbidden traits came in 1.22.
    # (The detail starts, as Placement's does, with WebOb's stock text for a 400.)
    forbidden = _get(app, "resources=VCPU:1&required=!HW_CPU_X86_AVX", "1.21")
    assert forbidden.status_int == 400
    assert (
        "Invalid query string parameters: Expected 'required' parameter value of the form: "
        "HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: !HW_CPU_X86_AVX"
    ) in forbidden.json["errors"][0]["detail"]


# -- the fixtures' topologies ---------------------------------------------------------


@pytest.fixture
def api_variables(monkeypatch):
    """What upstream's APIFixture sets before a topological fixture runs."""
    for name in ("RP_UUID", "RP_NAME", "PROJECT_ID", "USER_ID"):
        monkeypatch.setenv(name, str(uuid.uuid4()))
    before = set(os.environ)
    yield
    for name in set(os.environ) - before:  # what the build set: gone for the next test
        del os.environ[name]


def test_allocation_fixture_matches_upstream_state(graph, api_variables):
    topologies.build_allocation_fixture(graph)
    rp = os.environ["RP_UUID"]
    row = graph.read(
        "MATCH (rp:Provider {uuid: $rp}) RETURN rp.name AS name, rp.generation AS generation", rp=rp
    )[0]
    # Two inventories and three consumers' allocations, each one write: generation 5,
    # which reshaper.yaml sends back as resource_provider_generation.
    assert row == {"name": os.environ["RP_NAME"], "generation": 5}
    consumers = graph.read(
        "MATCH (c:Consumer) RETURN c.uuid AS uuid, c.user_id AS user, c.consumer_type AS type, "
        "c.generation AS generation"
    )
    by_uuid = {c["uuid"]: c for c in consumers}
    assert by_uuid[os.environ["CONSUMER_0"]]["user"] == os.environ["USER_ID"]
    assert by_uuid[os.environ["ALT_CONSUMER_ID"]]["user"] == os.environ["ALT_USER_ID"]
    # Written without a consumer type (read back as 'unknown' from 1.38), generation 1.
    assert {(c["type"], c["generation"]) for c in consumers} == {(None, 1)}


# The variables each upstream fixture sets (placement/tests/functional/fixtures/gabbits.py),
# besides the APIFixture's.
NUMA_NETWORK = {"AGGA_UUID"} | {
    f"{name}_UUID"
    for name in "SS1 CN1 NUMA0 NUMA1 FPGA0 PGPU0 FPGA1_0 FPGA1_1 SRIOV_AGENT ESN1 ESN2 OVS_AGENT BR_INT CN2 "
    "NIC1 NIC2 NIC3 PF1_1 PF1_2 PF2_1 PF2_2 PF2_3 PF2_4 PF3_1".split()
}
UPSTREAM_VARIABLES = {
    "AllocationFixture": {"ALT_USER_ID", "CONSUMER_0", "CONSUMER_ID", "ALT_CONSUMER_ID", "ALT_RP_UUID", "ALT_RP_NAME"},
    "SharedStorageFixture": {"AGG_UUID"}
    | {f"{n}_UUID" for n in "CN1 CN2 SS SS2 NUMA1_1 NUMA1_2 NUMA2_1 NUMA2_2 PF1_1 PF1_2 PF2_1 PF2_2".split()},
    "NonSharedStorageFixture": {"AGGA_UUID", "AGGB_UUID", "AGGC_UUID", "CN1_UUID", "CN2_UUID", "CN3_UUID"},
    "NUMAAggregateFixture": {"AGGA_UUID", "AGGB_UUID", "AGGC_UUID"}
    | {f"{n}_UUID" for n in "CN1 CN2 SS1 SS2 NUMA1_1 NUMA1_2 NUMA2_1 NUMA2_2".split()},
    "NUMANetworkFixture": NUMA_NETWORK,
    "DeepNUMANetworkFixture": NUMA_NETWORK,
    "GranularFixture": {"AGGA", "AGGB", "AGGC"}
    | {"CN_LEFT", "CN_MIDDLE", "CN_RIGHT", "SHR_DISK_1", "SHR_DISK_2", "SHR_NET"},
    "NeutronQoSMultiSegmentFixture": {
        f"compute{n}{part}" for n in range(4) for part in ("", ":ovs_agent", ":br_ex", ":sriov_agent", ":pf0")
    }
    | {"compute3:br_ex2", "compute3:pf1"},
}
# NeutronQoSMultiSegmentFixture's keys name providers with other names.
NEUTRON_PARTS = {
    ":ovs_agent": ":Open vSwitch agent",
    ":br_ex": ":Open vSwitch agent:br-ex",
    ":br_ex2": ":Open vSwitch agent:br-ex2",
    ":sriov_agent": ":NIC Switch agent",
    ":pf0": ":NIC Switch agent:enp129s0f0",
    ":pf1": ":NIC Switch agent:enp129s0f1",
}


def _upstream_provider_name(variable: str) -> str:
    if ":" in variable:
        compute, part = variable.split(":")
        # Upstream sets compute3:sriov_agent to compute2's agent (a slip kept as is).
        compute = "compute2" if variable == "compute3:sriov_agent" else compute
        return compute + NEUTRON_PARTS[":" + part]
    return variable.lower().removesuffix("_uuid")


@pytest.mark.parametrize("fixture", sorted(topologies.BUILDERS))
def test_the_variables_upstream_sets_name_the_same_things(graph, api_variables, fixture):
    before = set(os.environ)
    topologies.BUILDERS[fixture](graph)
    variables = {name: os.environ[name] for name in set(os.environ) - before}
    assert set(variables) == UPSTREAM_VARIABLES[fixture]
    rows = graph.read("MATCH (rp:Provider) RETURN rp.uuid AS uuid, rp.name AS name")
    providers = {r["uuid"]: r["name"] for r in rows}
    for name, value in variables.items():
        uuid.UUID(value)
        if value in providers:
            assert providers[value] == _upstream_provider_name(name), name
