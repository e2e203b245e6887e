"""Resource providers, inventories, aggregates and usages over the REST API, on the real Neo4j.

Placement's own gabbi files cover most of these routes (``workbench
conformance --only resource-provider --only inventory --only aggregate
--only usage``). These tests cover what they leave out:

* scripts of requests sent to the real Placement 16.0.0
  (:class:`workbench.comparison.oracle.PlacementOracle`) and to the graph's app get the
  same statuses and the same bodies (error texts and codes, links,
  generations), in corners the gabbi files do not visit: every response
  shape from 1.0 to 1.39, the list filters combined with capacity that an
  allocation ratio makes fractional or an overage makes negative, the
  pre-1.26 and pre-1.37 rules, ``GET /usages`` by consumer type;
* concurrency through the WSGI app from several threads: writers racing on
  one generation have exactly one winner, racing creators of one name too,
  and an inventory deleted while it is being allocated from is either
  deleted or allocated, never both.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from graph_api import GraphAPI

from workbench.comparison.oracle import PlacementOracle

PROJECT, USER = "p-1", "u-1"
CN1, CN2, NUMA0, NUMA1, LONE = (str(uuid.UUID(int=0xA0 + n)) for n in range(5))
AGG_A, AGG_B = "a0000000-0000-4000-8000-00000000000a", "b0000000-0000-4000-8000-00000000000b"
C1, C2, C3 = (str(uuid.UUID(int=0x1000 + n)) for n in range(3))
MISSING = str(uuid.UUID(int=0xDEAD))


@pytest.fixture
def api(graph):
    return GraphAPI(graph)


def comparable(answer):
    """An answer without what always differs (request ids) or has no defined order (lists of providers)."""
    status, body = answer
    if body and "errors" in body:
        body = {"errors": [{k: v for k, v in e.items() if k != "request_id"} for e in body["errors"]]}
    if body and "resource_providers" in body:
        body = {"resource_providers": sorted(body["resource_providers"], key=lambda p: p["uuid"])}
    if body and "aggregates" in body:
        # Placement reads a provider's aggregates without ORDER BY: any order (on SQLite it varies from run
        # to run). That a PUT echoes the request's order is checked by upstream's aggregate.yaml.
        body = {**body, "aggregates": sorted(body["aggregates"])}
    return status, body


def run_on_both(script, graph):
    """Each request of ``script(api)`` on both; the answers must be the same, one by one."""
    with PlacementOracle() as oracle:
        theirs = [comparable(a) for a in script(oracle)]
    ours = [comparable(a) for a in script(GraphAPI(graph))]
    assert len(ours) == len(theirs)
    for step, (mine, placement) in enumerate(zip(ours, theirs)):
        assert mine == placement, f"step {step}: graph {mine} != Placement {placement}"
    return ours


# -- scripts: the same requests to both ----------------------------------------------------------


def create(api, name, rp, parent=None, version="1.39"):
    body = {"name": name, "uuid": rp}
    if parent:
        body["parent_provider_uuid"] = parent
    return api.request("POST", "/resource_providers", body, version)


def generation(api, rp):
    return api.request("GET", f"/resource_providers/{rp}")[1]["generation"]


def allocate(api, consumer, amounts, consumer_type="INSTANCE", version="1.38", user=USER):
    body = {
        "allocations": {rp: {"resources": resources} for rp, resources in amounts.items()},
        "project_id": PROJECT,
        "user_id": user,
        "consumer_generation": None,
    }
    if consumer_type:
        body["consumer_type"] = consumer_type
    status, answer = api.request("PUT", f"/allocations/{consumer}", body, version)
    assert status == 204, answer


def cloud(api):
    """cn1 with two NUMA children (AGG_A, traits), cn2 (AGG_A, AGG_B), a lone provider; some allocations."""
    assert create(api, "cn1", CN1)[0] == 200
    assert create(api, "numa0", NUMA0, CN1)[0] == 200
    assert create(api, "numa1", NUMA1, CN1)[0] == 200
    assert create(api, "cn2", CN2)[0] == 200
    assert create(api, "lone", LONE)[0] == 200
    for rp, inventories in (
        # 3 VCPU at ratio 1.5: a capacity of 4.5, so 4 whole units.
        (NUMA0, {"VCPU": {"total": 3, "allocation_ratio": 1.5}, "MEMORY_MB": {"total": 2048, "step_size": 256}}),
        (NUMA1, {"VCPU": {"total": 4, "max_unit": 2}, "MEMORY_MB": {"total": 2048, "reserved": 1024}}),
        (CN2, {"VCPU": {"total": 8}, "DISK_GB": {"total": 500, "min_unit": 10}}),
    ):
        body = {"resource_provider_generation": 0, "inventories": inventories}
        status, body = api.request("PUT", f"/resource_providers/{rp}/inventories", body)
        assert status == 200, body
    for rp, aggregates in ((NUMA0, [AGG_A]), (NUMA1, [AGG_A]), (CN2, [AGG_B, AGG_A])):
        body = {"aggregates": aggregates, "resource_provider_generation": generation(api, rp)}
        assert api.request("PUT", f"/resource_providers/{rp}/aggregates", body)[0] == 200
    traits_of = {NUMA0: ["HW_NUMA_ROOT"], NUMA1: ["HW_NUMA_ROOT", "HW_CPU_X86_AVX2"], CN2: ["HW_CPU_X86_AVX2"]}
    for rp, traits in traits_of.items():
        body = {"traits": traits, "resource_provider_generation": generation(api, rp)}
        assert api.request("PUT", f"/resource_providers/{rp}/traits", body)[0] == 200
    allocate(api, C1, {NUMA0: {"VCPU": 2, "MEMORY_MB": 512}, CN2: {"DISK_GB": 100}})
    allocate(api, C2, {CN2: {"VCPU": 3}}, consumer_type="MIGRATION")
    allocate(api, C3, {NUMA1: {"VCPU": 1}}, consumer_type=None, version="1.37", user="u-2")


def script_shapes(api):
    """Every response shape of the provider routes, from 1.0 to 1.39."""
    yield create(api, "cn1", CN1, version="1.0")  # 201, no body
    yield create(api, "cn2", CN2, version="1.19")  # still 201
    yield create(api, "numa0", NUMA0, CN1, version="1.20")  # the provider, with parent and root
    yield create(api, "numa1", NUMA1, CN1, version="1.14")
    yield create(api, "child", LONE, CN1, version="1.13")  # no parent before 1.14: a 400
    for version in ("1.0", "1.1", "1.6", "1.11", "1.14", "1.15", "1.39"):
        yield api.request("GET", f"/resource_providers/{NUMA0}", microversion=version)
        yield api.request("GET", "/resource_providers", microversion=version)
    yield api.request("PUT", f"/resource_providers/{CN2}", {"name": "cn2 renamed"}, "1.0")
    yield api.request("GET", f"/resource_providers/{CN2}/aggregates", microversion="1.0")  # not yet: 404
    yield api.request("PUT", f"/resource_providers/{CN2}/aggregates", [AGG_B, AGG_A], "1.1")  # echoed in order
    yield api.request("GET", f"/resource_providers/{CN2}/aggregates", microversion="1.18")
    yield api.request("GET", f"/resource_providers/{CN2}/aggregates", microversion="1.19")
    yield api.request("DELETE", f"/resource_providers/{CN2}/inventories", microversion="1.4")  # 405 before 1.5
    yield api.request("DELETE", f"/resource_providers/{CN2}/inventories", microversion="1.5")
    yield api.request("GET", f"/resource_providers/{CN2}/inventories")


def test_response_shapes_by_microversion(graph):
    answers = run_on_both(script_shapes, graph)
    assert answers[0] == (201, None)
    assert answers[4][0] == 400


def script_filters(api):
    """The list filters, each alone and combined, at the versions that introduced them."""
    cloud(api)
    queries = [
        ("1.3", f"member_of={AGG_A}"),
        ("1.3", f"member_of=in:{AGG_A},{AGG_B}"),
        ("1.23", f"member_of={AGG_A}&member_of={AGG_B}"),  # repeating: not before 1.24
        ("1.24", f"member_of={AGG_A}&member_of={AGG_B}"),
        ("1.31", f"member_of=!{AGG_B}"),  # forbidden: not before 1.32
        ("1.32", f"member_of=!{AGG_B}"),
        ("1.32", f"member_of=!in:{AGG_A},{AGG_B}"),
        ("1.3", "resources=VCPU:1"),  # not before 1.4: the schema refuses it
        # numa0: 4.5 - 2 used = 2.5 free; numa1: 4 - 1, but 2 at most at once; cn2: 8 - 3.
        ("1.4", "resources=VCPU:2"),
        ("1.4", "resources=VCPU:3"),
        ("1.4", "resources=MEMORY_MB:1024"),  # numa0 in steps of 256, numa1 has 1024 left
        ("1.4", "resources=MEMORY_MB:1000"),  # no step of 256 fits: only numa1
        ("1.4", "resources=DISK_GB:5"),  # below min_unit
        ("1.4", "resources=VCPU:1,DISK_GB:400"),
        ("1.4", "resources=CUSTOM_NOPE:1"),
        ("1.4", "resources=VCPU:0"),
        ("1.4", "resources=VCPU"),
        ("1.13", f"in_tree={NUMA1}"),  # not before 1.14
        ("1.14", f"in_tree={NUMA1}"),
        ("1.14", f"in_tree={MISSING}"),
        ("1.14", f"in_tree={NUMA1}&resources=VCPU:2&member_of={AGG_A}"),
        ("1.18", "required=HW_NUMA_ROOT"),
        ("1.18", "required=HW_NUMA_ROOT,HW_CPU_X86_AVX2"),
        ("1.21", "required=!HW_NUMA_ROOT"),  # forbidden traits: not before 1.22
        ("1.22", "required=!HW_NUMA_ROOT"),
        ("1.22", "required=HW_CPU_X86_AVX2,!HW_NUMA_ROOT"),
        ("1.22", "required=CUSTOM_NOPE"),
        ("1.38", "required=in:HW_NUMA_ROOT,HW_CPU_X86_AVX2"),  # any-of: not before 1.39
        ("1.39", "required=in:HW_NUMA_ROOT,HW_CPU_X86_AVX2"),
        ("1.38", "required=HW_NUMA_ROOT&required=HW_CPU_X86_AVX2"),  # before 1.39 the last one counts
        ("1.39", "required=HW_NUMA_ROOT&required=HW_CPU_X86_AVX2"),
        ("1.39", "name=cn2"),
        ("1.39", "name="),  # an empty name filters nothing
        ("1.39", f"uuid={NUMA0}"),
        ("1.39", f"uuid={NUMA0.upper()}"),  # compared as given: no provider is spelt so
        ("1.39", f"in_tree={NUMA0.replace('-', '')}"),
        ("1.39", "uuid=not-a-uuid"),
        ("1.39", "colour=blue"),
    ]
    for version, query in queries:
        yield api.request("GET", f"/resource_providers?{query}", microversion=version)


def test_list_filters_by_microversion(graph):
    run_on_both(script_filters, graph)


def script_overage_and_usages(api):
    """An inventory shrunk below its usage, the capacity rules by version, and usage reports."""
    cloud(api)
    g = generation(api, CN2)
    shrunk = {"resource_provider_generation": g, "total": 2}
    yield api.request("PUT", f"/resource_providers/{CN2}/inventories/VCPU", shrunk)
    yield api.request("GET", f"/resource_providers/{CN2}/usages")  # 3 used of 2: allowed, and shown
    yield api.request("GET", "/resource_providers?resources=VCPU:1", microversion="1.4")  # cn2 has no room
    g = generation(api, CN2)
    # reserved == total: refused before 1.26, allowed from it.
    parked = {"resource_provider_generation": g, "total": 500, "reserved": 500}
    yield api.request("PUT", f"/resource_providers/{CN2}/inventories/DISK_GB", parked, "1.25")
    yield api.request("PUT", f"/resource_providers/{CN2}/inventories/DISK_GB", parked, "1.26")
    yield api.request("DELETE", f"/resource_providers/{CN2}/inventories/VCPU")  # in use
    yield api.request("DELETE", f"/resource_providers/{CN2}/inventories")  # in use, both classes named
    yield api.request("GET", f"/resource_providers/{LONE}/usages")
    yield api.request("GET", f"/resource_providers/{MISSING}/usages")
    yield api.request("GET", f"/usages?project_id={PROJECT}", microversion="1.8")  # not yet: 404
    yield api.request("GET", f"/usages?project_id={PROJECT}", microversion="1.9")
    yield api.request("GET", f"/usages?project_id={PROJECT}&consumer_type=INSTANCE", microversion="1.37")
    for query in ("", "&user_id=u-2", "&consumer_type=all", "&consumer_type=unknown", "&consumer_type=MIGRATION",
                  "&consumer_type=all&user_id=u-1", "&consumer_type=bad-type"):
        yield api.request("GET", f"/usages?project_id={PROJECT}{query}", microversion="1.38")
    yield api.request("GET", "/usages", microversion="1.38")  # project_id is required
    yield api.request("DELETE", f"/resource_providers/{CN2}")  # has allocations
    yield api.request("DELETE", f"/resource_providers/{CN1}")  # has children


def test_overage_capacity_rules_and_usages(graph):
    run_on_both(script_overage_and_usages, graph)


def script_reparenting(api):
    """Before 1.37 a root may be adopted but a child never moved or freed; from 1.37 both."""
    cloud(api)
    for version in ("1.36", "1.37"):
        moved, freed = {"name": "numa1", "parent_provider_uuid": CN2}, {"name": "numa0", "parent_provider_uuid": None}
        yield api.request("PUT", f"/resource_providers/{NUMA1}", moved, version)
        yield api.request("PUT", f"/resource_providers/{NUMA0}", freed, version)
    yield api.request("PUT", f"/resource_providers/{LONE}", {"name": "lone", "parent_provider_uuid": NUMA0}, "1.14")
    yield api.request("PUT", f"/resource_providers/{NUMA0}", {"name": "numa0", "parent_provider_uuid": LONE})  # a loop
    yield api.request("PUT", f"/resource_providers/{NUMA0}", {"name": "cn2"})  # a taken name
    yield api.request("GET", f"/resource_providers?in_tree={NUMA0}", microversion="1.14")


def test_reparenting_rules_by_microversion(graph):
    run_on_both(script_reparenting, graph)


# -- concurrency through the app -------------------------------------------------------------------


def race(calls):
    """Run the calls at the same moment, each in its own thread; their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        answers[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def codes(answers):
    """The sorted outcomes: 'ok' or the error code."""
    return sorted("ok" if status < 300 else body["errors"][0]["code"] for status, body in answers)


def test_racing_inventory_writers_on_one_generation_have_one_winner(api):
    assert create(api, "cn1", CN1)[0] == 200
    writers = [
        lambda total=total: api.request(
            "PUT", f"/resource_providers/{CN1}/inventories",
            {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": total}}},
        )  # fmt: skip
        for total in range(1, 7)
    ]
    answers = race(writers)
    assert codes(answers) == ["ok"] + ["placement.concurrent_update"] * 5
    winner = next(body for status, body in answers if status == 200)
    assert api.request("GET", f"/resource_providers/{CN1}/inventories")[1] == winner
    assert winner["resource_provider_generation"] == 1


def test_racing_aggregate_writers_on_one_generation_have_one_winner(api):
    assert create(api, "cn1", CN1)[0] == 200
    writers = [
        lambda agg=agg: api.request(
            "PUT", f"/resource_providers/{CN1}/aggregates", {"aggregates": [agg], "resource_provider_generation": 0}
        )
        for agg in (AGG_A, AGG_B, str(uuid.UUID(int=0xA66)))
    ]
    answers = race(writers)
    assert codes(answers) == ["ok", "placement.concurrent_update", "placement.concurrent_update"]
    winner = next(body for status, body in answers if status == 200)
    assert api.request("GET", f"/resource_providers/{CN1}/aggregates")[1] == winner


def test_racing_creators_of_one_inventory_have_one_winner(api):
    """POST .../inventories takes no generation: the second of two adds of one class is a conflict."""
    assert create(api, "cn1", CN1)[0] == 200
    adders = [
        lambda total=total: api.request(
            "POST", f"/resource_providers/{CN1}/inventories", {"resource_class": "VCPU", "total": total}
        )
        for total in (4, 8, 16)
    ]
    answers = race(adders)
    assert codes(answers) == ["ok", "placement.concurrent_update", "placement.concurrent_update"]
    winner = next(body for status, body in answers if status == 201)
    assert winner["resource_provider_generation"] == 1
    current = api.request("GET", f"/resource_providers/{CN1}/inventories")[1]
    assert current["inventories"]["VCPU"]["total"] == winner["total"]


def test_racing_creators_of_one_name_have_one_winner(api):
    creators = [lambda n=n: create(api, "cn1", str(uuid.UUID(int=0x500 + n))) for n in range(5)]
    answers = race(creators)
    assert codes(answers) == ["ok"] + ["placement.duplicate_name"] * 4
    status, listed = api.request("GET", "/resource_providers?name=cn1")
    assert [p["uuid"] for p in listed["resource_providers"]] == [
        next(body["uuid"] for status, body in answers if status == 200)
    ]


def test_an_inventory_deleted_while_allocated_from_is_one_or_the_other(api):
    """DELETE of an inventory and a claim on it race; exactly one of them wins, every time."""
    assert create(api, "cn1", CN1)[0] == 200
    for attempt in range(12):
        g = generation(api, CN1)
        body = {"resource_provider_generation": g, "inventories": {"VCPU": {"total": 4}}}
        assert api.request("PUT", f"/resource_providers/{CN1}/inventories", body)[0] == 200
        consumer = str(uuid.UUID(int=0x2000 + attempt))
        claim = {
            "allocations": {CN1: {"resources": {"VCPU": 1}}},
            "project_id": PROJECT, "user_id": USER, "consumer_generation": None, "consumer_type": "INSTANCE",
        }  # fmt: skip
        deleted, claimed = race([
            lambda: api.request("DELETE", f"/resource_providers/{CN1}/inventories/VCPU"),
            lambda: api.request("PUT", f"/allocations/{consumer}", claim),
        ])  # fmt: skip
        assert (deleted[0] == 204) != (claimed[0] == 204), (deleted, claimed)
        inventories = api.request("GET", f"/resource_providers/{CN1}/inventories")[1]["inventories"]
        usages = api.request("GET", f"/resource_providers/{CN1}/usages")[1]["usages"]
        if claimed[0] == 204:
            assert usages == {"VCPU": 1} and "VCPU" in inventories
            assert api.request("DELETE", f"/allocations/{consumer}")[0] == 204
        else:
            assert usages == {} and inventories == {}


def test_a_provider_deleted_while_a_child_is_created_under_it_is_one_or_the_other(api):
    """Never a child whose parent was deleted: the delete or the create is refused."""
    for attempt in range(12):
        parent, child = str(uuid.UUID(int=0x3000 + attempt)), str(uuid.UUID(int=0x4000 + attempt))
        assert create(api, f"parent{attempt}", parent)[0] == 200
        deleted, created = race([
            lambda: api.request("DELETE", f"/resource_providers/{parent}"),
            lambda: create(api, f"child{attempt}", child, parent),
        ])  # fmt: skip
        if created[0] == 200:
            assert codes([deleted]) == ["placement.resource_provider.cannot_delete_parent"]
            assert api.request("GET", f"/resource_providers/{child}")[1]["parent_provider_uuid"] == parent
        else:
            assert deleted[0] == 204 and created[0] == 400, (deleted, created)
            assert api.request("GET", f"/resource_providers/{child}")[0] == 404
