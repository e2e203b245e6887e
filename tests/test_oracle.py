"""Tests of workbench.comparison.oracle (the real Placement, in-process) and workbench.comparison.compare.

Everything runs against the real openstack-placement 16.0.0; nothing is mocked.
Expected answers are worked out by hand in the comments (and agree with
/work/shared/reference/placement-oracle.md §3).
"""

from __future__ import annotations

import copy
import random
import time

import pytest

from workbench.comparison.compare import diff_candidates, format_request, normalise_candidates
from workbench.comparison.oracle import OracleError, PlacementOracle
from workbench.scenario import parse

# cn1 (root, no inventory, aggregate A) with two NUMA children, and a sharing
# DISK_GB provider in the same aggregate (reference §3), plus cn2: a separate
# root with a custom resource class and a custom trait.
NUMA_DOC = {
    "name": "numa",
    "providers": [
        {
            "name": "cn1",
            "aggregates": ["A"],
            "children": [
                {"name": "numa0", "traits": ["HW_NUMA_ROOT"], "inventories": {"VCPU": 8, "MEMORY_MB": 4096}},
                {"name": "numa1", "traits": ["HW_NUMA_ROOT"], "inventories": {"VCPU": 8, "MEMORY_MB": 4096}},
            ],
        },
        {
            "name": "shared",
            "aggregates": ["A"],
            "traits": ["MISC_SHARES_VIA_AGGREGATE"],
            "inventories": {"DISK_GB": 1000},
        },
    ],
}

CUSTOM_DOC = {
    "name": "custom",
    "providers": [
        {"name": "cn2", "traits": ["CUSTOM_SLOW"], "inventories": {"CUSTOM_MAGIC": {"total": 4, "max_unit": 2}}},
    ],
}


@pytest.fixture(scope="module")
def numa():
    return parse(copy.deepcopy(NUMA_DOC))


@pytest.fixture
def oracle():
    with PlacementOracle() as o:
        yield o


@pytest.fixture
def loaded(oracle, numa):
    oracle.load(numa)
    return oracle


def uuids(scenario):
    return {p.name: p.uuid for p in scenario.providers}


def names(scenario):
    return {p.uuid: p.name for p in scenario.providers}


def request(allocs, mappings):
    """An allocation request body entry from {uuid: {rc: n}} and {suffix: [uuid]}."""
    return {"allocations": {rp: {"resources": r} for rp, r in allocs.items()}, "mappings": mappings}


def summary(scenario, name, used=None):
    """Provider summary at 1.39 as Placement documents it: every inventory's
    capacity ((total - reserved) * allocation_ratio) and used amount, traits,
    parent and root."""
    p = scenario.provider(name)
    root = p
    while root.parent_uuid:
        root = scenario.provider(root.parent_uuid)
    used = used or {}
    return {
        "resources": {rc: {"capacity": inv.capacity, "used": used.get(rc, 0)} for rc, inv in p.inventories.items()},
        "traits": list(p.traits),
        "parent_provider_uuid": p.parent_uuid,
        "root_provider_uuid": root.uuid,
    }


# -- allocation candidates ------------------------------------------------------


def test_unsuffixed_request_spreads_over_numa_nodes(loaded, numa):
    """VCPU:2,MEMORY_MB:1024,DISK_GB:10 with nothing used.

    The unsuffixed group may take each class from any provider of the tree, so
    VCPU and MEMORY_MB each come from numa0 or numa1: 2 x 2 = 4 combinations.
    DISK_GB only exists on the sharing provider, reachable through aggregate A.
    The mapping of the "" group lists every provider that gives something.
    Summaries cover every provider of the trees involved, cn1 included.
    """
    u = uuids(numa)
    n0, n1, sh = u["numa0"], u["numa1"], u["shared"]
    expected = {
        "allocation_requests": [
            request({vcpu: {"VCPU": 2}, sh: {"DISK_GB": 10}} | {mem: {"MEMORY_MB": 1024}}, {"": [vcpu, mem, sh]})
            if vcpu != mem
            else request({vcpu: {"VCPU": 2, "MEMORY_MB": 1024}, sh: {"DISK_GB": 10}}, {"": [vcpu, sh]})
            for vcpu in (n0, n1)
            for mem in (n0, n1)
        ],
        "provider_summaries": {u[name]: summary(numa, name) for name in ("cn1", "numa0", "numa1", "shared")},
    }
    status, body = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10")
    assert status == 200
    assert len(body["allocation_requests"]) == 4
    assert diff_candidates(expected, body, names(numa)) == ""
    assert normalise_candidates(body) == normalise_candidates(expected)


def test_granular_isolate_gives_one_vcpu_per_numa_node(loaded, numa):
    """resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate: the two groups
    must use different providers, so group 1 on numa0 and group 2 on numa1, or
    the other way round. Both candidates allocate the same amounts; only the
    mappings tell them apart."""
    u = uuids(numa)
    n0, n1 = u["numa0"], u["numa1"]
    status, body = loaded.allocation_candidates("resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate")
    assert status == 200
    got = normalise_candidates(body)["allocation_requests"]
    allocations = {n0: {"VCPU": 1}, n1: {"VCPU": 1}}
    want = normalise_candidates(
        {
            "allocation_requests": [
                request(allocations, {"1": [n0], "2": [n1]}),
                request(allocations, {"1": [n1], "2": [n0]}),
            ]
        }
    )["allocation_requests"]
    assert got == want
    # Without isolation both groups may also land on the same node: 2 x 2 = 4,
    # and when they do, that node gives VCPU 2 in one allocation.
    status, body = loaded.allocation_candidates("resources1=VCPU:1&resources2=VCPU:1&group_policy=none")
    assert status == 200
    assert len(body["allocation_requests"]) == 4
    assert {n0: {"resources": {"VCPU": 2}}} in [r["allocations"] for r in body["allocation_requests"]]


def test_same_subtree_of_siblings_gives_nothing(loaded):
    """numa0 and numa1 are siblings: neither is an ancestor of the other, so no
    candidate can put groups 1 and 2 (isolated) in one subtree."""
    status, body = loaded.allocation_candidates(
        "resources1=VCPU:1&resources2=VCPU:1&group_policy=isolate&same_subtree=1,2"
    )
    assert status == 200
    assert body == {"allocation_requests": [], "provider_summaries": {}}


def test_usage_is_taken_into_account(loaded, numa):
    """After a consumer takes 7 of numa0's 8 VCPUs, VCPU:2 can only come from
    numa1; MEMORY_MB still from either node: 2 candidates. numa0's summary
    shows used 7."""
    u = uuids(numa)
    status, _ = loaded.put_allocations(
        "11111111-1111-1111-1111-111111111111", {u["numa0"]: {"VCPU": 7}}, "proj", "user"
    )
    assert status == 204
    status, body = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024")
    assert status == 200
    requests = normalise_candidates(body)["allocation_requests"]
    assert len(requests) == 2
    assert all(r["allocations"][u["numa1"]].get("VCPU") == 2 for r in requests)
    assert body["provider_summaries"][u["numa0"]]["resources"]["VCPU"] == {"capacity": 8, "used": 7}


def test_custom_class_and_forbidden_custom_trait():
    """cn2 is the only provider of CUSTOM_MAGIC and carries CUSTOM_SLOW, so
    forbidding CUSTOM_SLOW leaves no candidate; max_unit 2 refuses 3 units."""
    scenario = parse(copy.deepcopy(CUSTOM_DOC))
    assert scenario.resource_classes == ["CUSTOM_MAGIC"] and scenario.traits == ["CUSTOM_SLOW"]
    cn2 = scenario.provider("cn2").uuid
    with PlacementOracle() as o:
        o.load(scenario)
        status, body = o.allocation_candidates("resources=CUSTOM_MAGIC:2")
        assert status == 200
        assert [r["allocations"] for r in body["allocation_requests"]] == [{cn2: {"resources": {"CUSTOM_MAGIC": 2}}}]
        assert body["provider_summaries"][cn2]["traits"] == ["CUSTOM_SLOW"]
        assert o.allocation_candidates("resources=CUSTOM_MAGIC:1&required=!CUSTOM_SLOW")[1]["allocation_requests"] == []
        assert o.allocation_candidates("resources=CUSTOM_MAGIC:3")[1]["allocation_requests"] == []


@pytest.mark.parametrize(
    "query, microversion",
    [
        ("resources=VCPU", "1.39"),  # no amount
        ("resources=VCPU:1&required=CUSTOM_NOT_CREATED", "1.39"),  # unknown trait
        ("resources=VCPU:1&group_policy=bogus", "1.39"),
        ("resources1=VCPU:1&resources2=VCPU:1", "1.39"),  # group_policy is required with 2 groups
        ("resources_A=VCPU:1&resources_B=VCPU:1&group_policy=none&same_subtree=_A,_B", "1.35"),  # same_subtree is 1.36+
    ],
)
def test_bad_query_gives_400_with_error_body(oracle, query, microversion):
    status, body = oracle.allocation_candidates(query, microversion=microversion)
    assert status == 400
    (error,) = body["errors"]
    assert error["status"] == 400 and error["detail"]


def test_microversion_changes_the_body_shape(loaded):
    """mappings appear in allocation requests at 1.34."""
    body_133 = loaded.allocation_candidates("resources=VCPU:1", microversion="1.33")[1]
    body_134 = loaded.allocation_candidates("resources=VCPU:1", microversion="1.34")[1]
    assert all("mappings" not in r for r in body_133["allocation_requests"])
    assert all("mappings" in r for r in body_134["allocation_requests"])
    assert loaded.request("GET", "/", microversion="1.50")[0] == 406


# -- loading, allocations, usages ------------------------------------------------


def test_load_writes_the_whole_tree(loaded, numa):
    u = uuids(numa)
    status, body = loaded.request("GET", "/resource_providers")
    assert status == 200
    got = {p["name"]: (p["uuid"], p["parent_provider_uuid"]) for p in body["resource_providers"]}
    assert got == {p.name: (p.uuid, p.parent_uuid) for p in numa.providers}
    _, inv = loaded.request("GET", f"/resource_providers/{u['numa0']}/inventories")
    assert inv["inventories"]["VCPU"] == numa.provider("numa0").inventories["VCPU"].fields()
    _, aggs = loaded.request("GET", f"/resource_providers/{u['shared']}/aggregates")
    assert aggs["aggregates"] == numa.provider("shared").aggregates


def test_load_stops_at_the_first_refused_call(loaded, numa):
    """Loading the same providers twice: the first POST is refused (409,
    name/uuid already exists) and the error shows the call and the answer."""
    with pytest.raises(OracleError) as info:
        loaded.load(numa)
    err = info.value
    assert (err.method, err.path, err.status) == ("POST", "/resource_providers", 409)
    assert "POST /resource_providers -> 409" in str(err) and "errors" in str(err)


def test_consumers_allocations_and_usages(oracle):
    doc = copy.deepcopy(NUMA_DOC)
    doc["consumers"] = [
        {
            "name": "vm1",
            "project": "p1",
            "user": "u1",
            "allocations": {"numa0": {"VCPU": 2, "MEMORY_MB": 1024}, "shared": {"DISK_GB": 10}},
        },
        {"name": "vm2", "project": "p1", "user": "u2", "consumer_type": "MIGRATION", "allocations": {"numa1": {"VCPU": 1}}},
    ]
    scenario = parse(doc)
    oracle.load(scenario)
    u = uuids(scenario)
    vm1, vm2 = (c.uuid for c in scenario.consumers)

    allocs = oracle.get_allocations(vm1)
    assert {rp: a["resources"] for rp, a in allocs["allocations"].items()} == {
        u["numa0"]: {"VCPU": 2, "MEMORY_MB": 1024},
        u["shared"]: {"DISK_GB": 10},
    }
    assert (allocs["project_id"], allocs["user_id"], allocs["consumer_type"]) == ("p1", "u1", "INSTANCE")
    assert allocs["consumer_generation"] == 1  # one write so far

    # 1.38+: usages grouped by consumer type, each with its consumer count.
    assert oracle.usages("p1") == {
        "usages": {
            "INSTANCE": {"VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 10, "consumer_count": 1},
            "MIGRATION": {"VCPU": 1, "consumer_count": 1},
        }
    }
    assert oracle.usages("p1", user="u2") == {"usages": {"MIGRATION": {"VCPU": 1, "consumer_count": 1}}}
    assert oracle.usages("nobody") == {"usages": {}}
    assert oracle.provider_usages(u["numa0"])["usages"] == {"VCPU": 2, "MEMORY_MB": 1024}

    # Writing again as if the consumer were new conflicts (it has generation 1) ...
    status, body = oracle.put_allocations(vm1, {u["numa1"]: {"VCPU": 1}}, "p1", "u1")
    assert status == 409 and body["errors"][0]["code"] == "placement.concurrent_update"
    # ... and with the right generation it replaces the allocations.
    status, _ = oracle.put_allocations(vm1, {u["numa1"]: {"VCPU": 1}}, "p1", "u1", consumer_generation=1)
    assert status == 204
    assert oracle.provider_usages(u["numa1"])["usages"]["VCPU"] == 2
    # More than the capacity (8 VCPU on numa1, 2 used) is refused.
    status, body = oracle.put_allocations(
        "22222222-2222-2222-2222-222222222222", {u["numa1"]: {"VCPU": 7}}, "p2", "u1"
    )
    assert status == 409
    assert oracle.get_allocations(vm2)["allocations"][u["numa1"]]["resources"] == {"VCPU": 1}


# -- isolation and lifecycle --------------------------------------------------------


def test_two_oracles_do_not_share_data(numa):
    with PlacementOracle() as a, PlacementOracle() as b:
        a.load(numa)
        assert b.request("GET", "/resource_providers") == (200, {"resource_providers": []})
        b.load(numa)  # same UUIDs and names: no conflict, it is another database
        b.request("PUT", "/traits/CUSTOM_ONLY_IN_B")
        assert a.request("GET", "/traits/CUSTOM_ONLY_IN_B")[0] == 404
        assert b.request("GET", "/traits/CUSTOM_ONLY_IN_B")[0] == 204
        # standard traits and classes exist in every fresh database
        assert a.request("GET", "/traits/HW_NUMA_ROOT")[0] == 204
        assert b.request("GET", "/resource_classes/VCPU")[0] == 200
    with PlacementOracle() as c:
        assert c.request("GET", "/resource_providers")[1] == {"resource_providers": []}
        assert c.request("GET", "/traits/CUSTOM_ONLY_IN_B")[0] == 404


def test_many_oracles_are_cheap_and_closed_ones_refuse_calls():
    PlacementOracle().close()  # the app exists (maybe built here)
    start = time.perf_counter()
    for _ in range(100):
        with PlacementOracle() as o:
            assert o.request("GET", "/resource_providers")[0] == 200
    assert time.perf_counter() - start < 10  # measured ~5 ms per oracle + request
    with pytest.raises(RuntimeError, match="closed"):
        o.request("GET", "/")


def test_capture_sql_records_the_selects_of_a_request(loaded):
    with loaded.capture_sql() as sql:
        status, _ = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10")
    assert status == 200
    assert sql.kinds().get("SELECT", 0) >= 3
    assert any("resource_providers" in s for s in sql.selects)
    assert all(s.split()[0].upper() in {"SELECT", "BEGIN", "COMMIT", "ROLLBACK"} for s in sql.statements)
    assert sql.lines >= sql.count and str(sql.count) in sql.summary()
    count = sql.count
    loaded.allocation_candidates("resources=VCPU:1")  # after the block: not recorded
    assert sql.count == count


def test_capture_sql_sees_writes_and_only_its_own_oracle(loaded, numa):
    with PlacementOracle() as other, loaded.capture_sql() as sql:
        other.request("GET", "/resource_providers")
        assert sql.count == 0
        loaded.put_allocations("33333333-3333-3333-3333-333333333333", {uuids(numa)["numa0"]: {"VCPU": 1}}, "p", "u")
    assert sql.kinds().get("INSERT", 0) >= 1


# -- compare -------------------------------------------------------------------------


def test_normalise_ignores_order(loaded, numa):
    status, body = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10")
    shuffled = copy.deepcopy(body)
    rng = random.Random(7)
    rng.shuffle(shuffled["allocation_requests"])
    for r in shuffled["allocation_requests"]:
        r["allocations"] = dict(reversed(list(r["allocations"].items())))
        for rps in r["mappings"].values():
            rps.reverse()
    shuffled["provider_summaries"] = dict(reversed(list(shuffled["provider_summaries"].items())))
    for s in shuffled["provider_summaries"].values():
        s["traits"].reverse()
    assert normalise_candidates(shuffled) == normalise_candidates(body)
    assert diff_candidates(body, shuffled) == ""
    assert normalise_candidates(normalise_candidates(body)) == normalise_candidates(body)  # idempotent


def test_diff_shows_a_changed_amount_by_name(loaded, numa):
    _, body = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10")
    changed = copy.deepcopy(body)
    sh = uuids(numa)["shared"]
    changed["allocation_requests"][0]["allocations"][sh]["resources"]["DISK_GB"] = 20
    text = diff_candidates(body, changed, names(numa))
    assert "4 expected, 4 actual, 3 in both" in text
    assert "amounts differ (1)" in text
    assert "shared{DISK_GB:10}" in text and "shared{DISK_GB:20}" in text
    assert sh not in text  # names replace UUIDs


def test_diff_lists_missing_requests_and_summary_changes(loaded, numa):
    _, body = loaded.allocation_candidates("resources=VCPU:2,MEMORY_MB:1024,DISK_GB:10")
    u = uuids(numa)
    fewer = copy.deepcopy(body)
    fewer["allocation_requests"] = [r for r in fewer["allocation_requests"] if len(r["allocations"]) == 2]
    fewer["provider_summaries"][u["numa0"]]["resources"]["VCPU"]["used"] = 3
    del fewer["provider_summaries"][u["cn1"]]
    text = diff_candidates(body, fewer, names(numa))
    assert "4 expected, 2 actual, 2 in both" in text
    assert "only in expected (2):" in text
    assert "- numa0{VCPU:2} + numa1{MEMORY_MB:1024} + shared{DISK_GB:10}" in text
    assert "only in expected: cn1" in text
    assert "resources.VCPU.used: expected 0, actual 3" in text
    # duplicates count: the same request twice is not the same as once
    doubled = copy.deepcopy(body)
    doubled["allocation_requests"].append(doubled["allocation_requests"][0])
    assert "only in actual (1)" in diff_candidates(body, doubled)


def test_diff_of_error_bodies_ignores_request_ids(oracle):
    _, e1 = oracle.allocation_candidates("resources=VCPU")
    _, e2 = oracle.allocation_candidates("resources=VCPU")
    assert e1["errors"][0]["request_id"] != e2["errors"][0]["request_id"]
    assert diff_candidates(e1, e2) == ""
    assert diff_candidates(e1, {"allocation_requests": [], "provider_summaries": {}}).startswith("bodies differ")


def test_format_request_uses_names_and_mappings(numa):
    u = uuids(numa)
    line = format_request(
        request({u["numa1"]: {"VCPU": 1}, u["numa0"]: {"VCPU": 1}}, {"2": [u["numa0"]], "1": [u["numa1"]]}),
        names(numa),
    )
    assert line == 'numa0{VCPU:1} + numa1{VCPU:1} | "1": [numa1]; "2": [numa0]'
