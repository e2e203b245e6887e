"""Quotas and whole-node (bare-metal) claims, on the real Neo4j.

Expected values follow from the limits and amounts each test sets up; the
reasoning is in the comments.
"""

import threading
import uuid

import pytest

from workbench.engine import allocations, candidates, loader, quotas, usages
from workbench.engine.errors import Conflict, PlacementError
from workbench.engine.quotas import QuotaExceeded
from workbench.scenario import ScenarioError, parse

CLOUD = {
    "providers": [
        {"name": "cn1", "inventories": {"VCPU": 16, "MEMORY_MB": 32768}},
        {"name": "cn2", "inventories": {"VCPU": 16, "MEMORY_MB": 32768}},
        {"name": "bm-gold-1", "inventories": {"CUSTOM_BAREMETAL_GOLD": 1}},
        # Parked for cleaning: reserved == total leaves a capacity of 0 (microversion 1.26).
        {"name": "bm-gold-2", "inventories": {"CUSTOM_BAREMETAL_GOLD": {"total": 1, "reserved": 1}}},
        {
            "name": "big",
            "inventories": {"VCPU": {"total": 8, "max_unit": 2}, "MEMORY_MB": 4096},
            "children": [{"name": "big_gpu", "inventories": {"VGPU": 2}}],
        },
    ],
    "quotas": [
        {"project": "demo", "limits": {"VCPU": 10}},
        {"project": "demo", "user": "alice", "limits": {"VCPU": 4}},
        {"project": "demo", "consumer_type": "INSTANCE", "limits": {"MEMORY_MB": 8192}},
    ],
}


@pytest.fixture
def cloud(graph):
    scenario = parse(CLOUD)
    loader.load(graph, scenario, reset=True)
    return graph, scenario


def new_uuid():
    return str(uuid.uuid4())


def held(graph, project, rc, user=None):
    usage = usages.usages_by_consumer_type(graph, project, user)["usages"]
    return sum(group.get(rc, 0) for group in usage.values())


def test_a_user_limit_refuses_a_claim_with_the_numbers(cloud):
    graph, scenario = cloud
    cn1 = scenario.provider("cn1").uuid
    allocations.set_allocations(graph, new_uuid(), {cn1: {"VCPU": 3}}, "demo", "alice")
    with pytest.raises(QuotaExceeded) as refused:
        allocations.set_allocations(graph, new_uuid(), {cn1: {"VCPU": 2}}, "demo", "alice")
    # alice's limit is 4 and she holds 3: 2 more would make 5.
    detail = refused.value.detail
    for words in ("VCPU", "user alice", "limit 4", "in use 3", "asked for 2"):
        assert words in detail
    assert refused.value.status == 409 and refused.value.code == quotas.QUOTA_EXCEEDED
    assert held(graph, "demo", "VCPU") == 3  # nothing was written


def test_the_project_limit_counts_every_user(cloud):
    graph, scenario = cloud
    cn1, cn2 = scenario.provider("cn1").uuid, scenario.provider("cn2").uuid
    allocations.set_allocations(graph, new_uuid(), {cn1: {"VCPU": 4}}, "demo", "alice")
    allocations.set_allocations(graph, new_uuid(), {cn2: {"VCPU": 6}}, "demo", "bob")
    # 4 + 6 = 10, the project's limit; bob has no limit of his own, but the project has.
    with pytest.raises(QuotaExceeded, match="project demo\\): limit 10, in use 10, asked for 1"):
        allocations.set_allocations(graph, new_uuid(), {cn2: {"VCPU": 1}}, "demo", "bob")
    # Another project is not limited at all.
    allocations.set_allocations(graph, new_uuid(), {cn2: {"VCPU": 6}}, "other", "eve")


def test_a_consumer_type_limit_ignores_other_types(cloud):
    graph, scenario = cloud
    cn1 = scenario.provider("cn1").uuid
    # The MEMORY_MB limit covers INSTANCE consumers only: a MIGRATION consumer (how
    # Nova holds a resize's source host) is not counted against it.
    allocations.set_allocations(graph, new_uuid(), {cn1: {"MEMORY_MB": 8192}}, "demo", "bob", "MIGRATION")
    allocations.set_allocations(graph, new_uuid(), {cn1: {"MEMORY_MB": 8192}}, "demo", "bob", "INSTANCE")
    with pytest.raises(QuotaExceeded, match="consumer type INSTANCE"):
        allocations.set_allocations(graph, new_uuid(), {cn1: {"MEMORY_MB": 1}}, "demo", "bob", "INSTANCE")


def test_moving_a_consumer_is_not_counted_twice(cloud):
    """A resize or move replaces a consumer's allocations in one write. Counting
    per provider — the usage now plus what the move asks for — would see the
    old and the new allocations together and refuse; counting the project's
    consumers with this consumer's old allocations left out sees the truth."""
    graph, scenario = cloud
    cn1, cn2 = scenario.provider("cn1").uuid, scenario.provider("cn2").uuid
    vm = new_uuid()
    allocations.set_allocations(graph, vm, {cn1: {"VCPU": 4}}, "demo", "alice")  # alice at her limit of 4

    per_provider_count = sum(
        summary["resources"].get("VCPU", {}).get("used", 0)
        for summary in candidates.find(graph, "resources=VCPU:1")["provider_summaries"].values()
    )
    assert per_provider_count + 4 > 4  # the naive check would refuse the move

    allocations.set_allocations(graph, vm, {cn2: {"VCPU": 4}}, "demo", "alice", consumer_generation=1)
    moved = allocations.get_allocations(graph, vm)["allocations"]
    assert {rp: a["resources"] for rp, a in moved.items()} == {cn2: {"VCPU": 4}}
    assert held(graph, "demo", "VCPU", "alice") == 4


def test_racing_claims_never_end_above_the_limit(cloud):
    graph, scenario = cloud
    cn1, cn2 = scenario.provider("cn1").uuid, scenario.provider("cn2").uuid
    outcomes = []

    def claim(i):
        # Two providers, so the claims do not serialise on a provider lock:
        # only the project's quota lock stands between them and the limit.
        provider = (cn1, cn2)[i % 2]
        try:
            allocations.set_allocations(graph, new_uuid(), {provider: {"VCPU": 1}}, "demo", f"user{i}")
            outcomes.append("ok")
        except QuotaExceeded:
            outcomes.append("quota")
        except Exception as error:  # anything else is a failure of the test
            outcomes.append(repr(error))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The project limit is 10 VCPU: exactly 10 one-VCPU claims fit, 6 are refused cleanly.
    assert sorted(outcomes) == ["ok"] * 10 + ["quota"] * 6
    assert held(graph, "demo", "VCPU") == 10


def test_candidates_can_be_trimmed_to_what_the_quota_affords(cloud):
    graph, scenario = cloud
    allocations.set_allocations(graph, new_uuid(), {scenario.provider("cn1").uuid: {"VCPU": 3}}, "demo", "alice")
    body = candidates.find(graph, "resources=VCPU:2")
    assert len(body["allocation_requests"]) == 3  # cn1, cn2 and big all have 2 VCPU free
    trimmed, dropped = quotas.affordable(graph, body, "demo", "alice")
    # alice has 4 - 3 = 1 VCPU of quota left: no 2-VCPU candidate is affordable.
    assert trimmed["allocation_requests"] == [] and trimmed["provider_summaries"] == {}
    assert dropped == {"VCPU needs more than the 1 left in quota": 3}
    # bob is bound only by the project: 10 - 3 = 7 left, everything fits.
    assert quotas.affordable(graph, body, "demo", "bob")[0] == body


def test_a_scenario_whose_consumers_break_its_quota_is_refused():
    document = dict(
        CLOUD,
        consumers=[{"name": "vm", "project": "demo", "user": "alice", "allocations": {"cn1": {"VCPU": 5}}}],
    )
    with pytest.raises(ScenarioError, match="quotas\\[1\\].limits.VCPU: .*hold 5 VCPU, over the limit of 4"):
        parse(document)


# -- whole-node consumption ------------------------------------------------------------------


def test_a_bare_metal_node_is_one_unit_of_its_own_class(cloud):
    graph, scenario = cloud
    body = candidates.find(graph, "resources=CUSTOM_BAREMETAL_GOLD:1")
    # bm-gold-2 is parked (reserved == total): never a candidate.
    assert [set(r["allocations"]) for r in body["allocation_requests"]] == [{scenario.provider("bm-gold-1").uuid}]


def test_claiming_a_whole_provider_takes_everything_left(cloud):
    graph, scenario = cloud
    big, gpu = scenario.provider("big").uuid, scenario.provider("big_gpu").uuid
    owner = new_uuid()
    taken = allocations.claim_whole_provider(graph, "big", owner, "research", "carol", subtree=True)
    # All of it, every class, even past max_unit 2 for VCPU: nothing else may land there.
    assert taken == {big: {"VCPU": 8, "MEMORY_MB": 4096}, gpu: {"VGPU": 2}}
    assert candidates.find(graph, "resources=VCPU:1&in_tree=" + big)["allocation_requests"] == []

    allocations.delete_allocations(graph, owner)
    assert len(candidates.find(graph, "resources=VCPU:1&in_tree=" + big)["allocation_requests"]) == 1


def test_a_whole_provider_claim_is_refused_while_someone_else_holds_part_of_it(cloud):
    graph, scenario = cloud
    big = scenario.provider("big").uuid
    allocations.set_allocations(graph, new_uuid(), {big: {"VCPU": 1}}, "research", "dave")
    with pytest.raises(Conflict, match="already in use"):
        allocations.claim_whole_provider(graph, "big", new_uuid(), "research", "carol")


def test_a_whole_provider_claim_checks_the_generation(cloud):
    graph, scenario = cloud
    generation = graph.read("MATCH (p:Provider {name: 'bm-gold-1'}) RETURN p.generation AS g")[0]["g"]
    with pytest.raises(Conflict, match="generation"):
        allocations.claim_whole_provider(graph, "bm-gold-1", new_uuid(), "x", "y", generation=generation + 1)
    allocations.claim_whole_provider(graph, "bm-gold-1", new_uuid(), "x", "y", generation=generation)


def test_a_parked_node_cannot_be_claimed_whole(cloud):
    graph, _ = cloud
    with pytest.raises(Conflict, match="nothing is free on bm-gold-2"):
        allocations.claim_whole_provider(graph, "bm-gold-2", new_uuid(), "x", "y")


def test_quota_applies_to_what_a_whole_claim_takes(cloud):
    graph, _ = cloud
    # 'big' has 8 VCPU; alice may hold only 4.
    with pytest.raises(QuotaExceeded, match="asked for 8"):
        allocations.claim_whole_provider(graph, "big", new_uuid(), "demo", "alice")
    assert held(graph, "demo", "VCPU") == 0


def test_refusals_are_placement_errors_for_the_cli(cloud):
    graph, _ = cloud
    with pytest.raises(PlacementError) as refused:
        allocations.claim_whole_provider(graph, "no-such-node", new_uuid(), "x", "y")
    assert refused.value.status == 404
