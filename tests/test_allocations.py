"""Allocations on the real Neo4j: claim, replace, release, usages, and concurrent claims.

The rules are Placement's (microversion 1.38, placement/handlers/allocation.py,
placement/handlers/util.py ensure_consumer, placement/objects/allocation.py):

* a new consumer is written with consumer_generation None; an existing one
  with its current generation, anything else is 409 placement.concurrent_update;
* a consumer's generation is 1 after its first write and grows by one per write;
* every amount must satisfy min_unit <= amount <= max_unit and
  amount % step_size == 0, and usage + amount <= int((total - reserved) *
  allocation_ratio): otherwise 409 and nothing is written;
* an allocation against a provider that does not exist is 400;
* a consumer's own current allocations do not count against a replacement;
* releasing removes the consumer; releasing nothing is 404;
* a consumer written without a type (before 1.38) is "unknown" and a later
  typeless write keeps its type;
* the reshaper (placement/handlers/reshaper.py, objects/reshaper.py) moves
  inventories and allocations in one transaction: a refusal at any step
  leaves everything as it was.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from workbench.engine import allocations as alloc
from workbench.engine import consumers
from workbench.engine import loader, reshaper, usages
from workbench.engine.errors import CONCURRENT_UPDATE, BadRequest, Conflict, NotFound
from workbench.scenario import parse

CLOUD = parse(
    {
        "providers": [
            {
                "name": "cn1",
                "inventories": {
                    "VCPU": {"total": 4, "allocation_ratio": 2.0},  # capacity 8
                    # capacity 4096 - 512 = 3584; amounts 256..2048 in steps of 256
                    "MEMORY_MB": {"total": 4096, "reserved": 512, "min_unit": 256, "max_unit": 2048, "step_size": 256},
                },
            },
            {
                "name": "cn2",
                "inventories": {"VCPU": 4, "DISK_GB": {"total": 100, "reserved": 10}},  # capacities 4 and 90
            },
            # Ironic node parked for cleaning: capacity 0.
            {"name": "parked", "inventories": {"CUSTOM_BAREMETAL_GOLD": {"total": 1, "reserved": 1}}},
            # For the concurrency tests: room for exactly HOT_CAPACITY one-unit claims.
            {"name": "hot", "inventories": {"VCPU": 5}},
            {"name": "hot2", "inventories": {"VCPU": 5}},
        ]
    },
    source="allocations-cloud",
)
HOT_CAPACITY = 5
RP = {p.name: p.uuid for p in CLOUD.providers}
CN1, CN2, PARKED, HOT, HOT2 = (RP[n] for n in ("cn1", "cn2", "parked", "hot", "hot2"))
NOTHING = {"allocations": {}}  # GET /allocations/{uuid} of a consumer without allocations


@pytest.fixture
def cloud(graph):
    loader.load(graph, CLOUD)
    return graph


def new_consumer() -> str:
    return str(uuid.uuid4())


def generations(graph) -> dict[str, int]:
    return {r["uuid"]: r["g"] for r in graph.read("MATCH (p:Provider) RETURN p.uuid AS uuid, p.generation AS g")}


def used(graph, rp: str) -> dict[str, int]:
    return usages.provider_usages(graph, rp)["usages"]


def state(graph) -> dict:
    """Everything a refused write must leave untouched."""
    return {
        "generations": generations(graph),
        "consumers": graph.read("MATCH (c:Consumer) RETURN c {.*} AS c ORDER BY c.uuid"),
        "allocations": graph.read(
            "MATCH (c:Consumer)-[a:CONSUMES]->(i:Inventory)<-[:HAS_INVENTORY]-(p:Provider) "
            "RETURN c.uuid, p.uuid, i.resource_class, a.used ORDER BY c.uuid, p.uuid, i.resource_class"
        ),
    }


# -- claim, replace, release -----------------------------------------------------------


def test_claim_a_new_consumer_and_read_it_back(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 2, "MEMORY_MB": 1024}, CN2: {"DISK_GB": 20}}, "demo", "alice")
    # Providers are loaded at generation 0; writing allocations to a provider
    # bumps its generation once (Placement does the same).
    assert alloc.get_allocations(cloud, c) == {
        "allocations": {
            CN1: {"resources": {"VCPU": 2, "MEMORY_MB": 1024}, "generation": 1},
            CN2: {"resources": {"DISK_GB": 20}, "generation": 1},
        },
        "consumer_generation": 1,
        "project_id": "demo",
        "user_id": "alice",
        "consumer_type": "INSTANCE",
    }
    assert used(cloud, CN1) == {"VCPU": 2, "MEMORY_MB": 1024}
    assert used(cloud, CN2) == {"VCPU": 0, "DISK_GB": 20}


def test_consumer_uuid_without_dashes_is_the_same_consumer(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c.replace("-", "").upper(), {CN1: {"VCPU": 1}}, "demo", "alice")
    assert alloc.get_allocations(cloud, c)["allocations"] == {CN1: {"resources": {"VCPU": 1}, "generation": 1}}


def test_replace_moves_the_consumer_and_bumps_its_generation(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 2, "MEMORY_MB": 1024}}, "demo", "alice")
    alloc.set_allocations(
        cloud, c, {CN2: {"VCPU": 2}}, "demo", "alice", consumer_type="MIGRATION", consumer_generation=1
    )
    body = alloc.get_allocations(cloud, c)
    assert set(body["allocations"]) == {CN2}
    assert body["allocations"][CN2]["resources"] == {"VCPU": 2}
    assert (body["consumer_generation"], body["consumer_type"]) == (2, "MIGRATION")
    assert used(cloud, CN1) == {"VCPU": 0, "MEMORY_MB": 0}
    assert used(cloud, CN2) == {"VCPU": 2, "DISK_GB": 0}


def test_release_removes_everything_and_the_consumer(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 3}, CN2: {"DISK_GB": 5}}, "demo", "alice")
    alloc.delete_allocations(cloud, c)
    assert alloc.get_allocations(cloud, c) == NOTHING
    assert used(cloud, CN1)["VCPU"] == 0 and used(cloud, CN2)["DISK_GB"] == 0
    # The consumer is gone: claiming again is a new consumer (generation None) ...
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 1}}, "demo", "alice")
    assert alloc.get_allocations(cloud, c)["consumer_generation"] == 1
    alloc.delete_allocations(cloud, c)
    # ... and releasing what is not there is Placement's 404.
    with pytest.raises(NotFound) as caught:
        alloc.delete_allocations(cloud, c)
    assert caught.value.status == 404


def test_putting_empty_allocations_releases(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 3}}, "demo", "alice")
    alloc.set_allocations(cloud, c, {}, "demo", "alice", consumer_generation=1)
    assert alloc.get_allocations(cloud, c) == NOTHING
    assert used(cloud, CN1)["VCPU"] == 0
    assert not cloud.read("MATCH (c:Consumer {uuid: $c}) RETURN c", c=c)


def test_replacing_does_not_count_the_consumers_own_allocations(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 8}}, "demo", "alice")  # the whole capacity of 8
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 8, "MEMORY_MB": 256}}, "demo", "alice", consumer_generation=1)
    assert used(cloud, CN1) == {"VCPU": 8, "MEMORY_MB": 256}


def test_claim_picks_a_candidate(cloud):
    c = new_consumer()
    chosen = alloc.claim(cloud, c, "resources=DISK_GB:90", "demo", "alice")
    # Only cn2 has DISK_GB, and 90 is exactly its capacity (100 - 10).
    assert chosen == {CN2: {"DISK_GB": 90}}
    assert used(cloud, CN2)["DISK_GB"] == 90
    # The parked node is never a candidate: nothing to claim is a conflict.
    with pytest.raises(Conflict):
        alloc.claim(cloud, new_consumer(), "resources=CUSTOM_BAREMETAL_GOLD:1", "demo", "alice")


# -- two consumers at once ----------------------------------------------------------------


def test_write_allocations_for_two_consumers(cloud):
    a, b = new_consumer(), new_consumer()
    alloc.write_allocations(
        cloud,
        {
            a: {"allocations": {CN1: {"VCPU": 4}}, "project_id": "demo", "user_id": "alice", "consumer_generation": None},
            b: {"allocations": {CN1: {"VCPU": 4}, CN2: {"VCPU": 1}}, "project_id": "demo", "user_id": "bob",
                "consumer_type": "MIGRATION", "consumer_generation": None},
        },
    )
    assert alloc.get_allocations(cloud, a)["allocations"][CN1]["resources"] == {"VCPU": 4}
    assert alloc.get_allocations(cloud, b)["consumer_type"] == "MIGRATION"
    assert used(cloud, CN1)["VCPU"] == 8 and used(cloud, CN2)["VCPU"] == 1


@pytest.mark.parametrize(
    "second",
    [
        # together 5 + 4 = 9 VCPU on cn1, beyond its capacity of 8 (each alone fits)
        {"allocations": {CN1: {"VCPU": 4}}, "consumer_generation": None},
        # a new consumer must come with generation None
        {"allocations": {CN2: {"VCPU": 1}}, "consumer_generation": 3},
        # a provider that does not exist
        {"allocations": {str(uuid.UUID(int=7)): {"VCPU": 1}}, "consumer_generation": None},
    ],
    ids=["together beyond capacity", "bad generation", "unknown provider"],
)
def test_write_allocations_is_all_or_nothing(cloud, second):
    before = state(cloud)
    a, b = new_consumer(), new_consumer()
    with pytest.raises((Conflict, BadRequest)):
        alloc.write_allocations(
            cloud,
            {
                a: {"allocations": {CN1: {"VCPU": 5}}, "project_id": "demo", "user_id": "alice",
                    "consumer_generation": None},
                b: dict(second, project_id="demo", user_id="bob"),
            },
        )
    assert alloc.get_allocations(cloud, a) == NOTHING
    assert state(cloud) == before


# -- consumer generations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "existing, given",
    [(False, 0), (False, 1), (True, None), (True, 0), (True, 2)],
    ids=["new with 0", "new with 1", "existing with None", "existing with stale 0", "existing with future 2"],
)
def test_consumer_generation_must_match(cloud, existing, given):
    c = new_consumer()
    if existing:
        alloc.set_allocations(cloud, c, {CN1: {"VCPU": 1}}, "demo", "alice")  # now at generation 1
    before = state(cloud)
    with pytest.raises(Conflict) as caught:
        alloc.set_allocations(cloud, c, {CN1: {"VCPU": 2}}, "demo", "alice", consumer_generation=given)
    assert caught.value.status == 409
    assert caught.value.code == CONCURRENT_UPDATE == "placement.concurrent_update"
    assert "consumer generation conflict" in caught.value.detail
    assert state(cloud) == before


def test_releasing_by_put_also_needs_the_generation(cloud):
    c = new_consumer()
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 1}}, "demo", "alice")
    with pytest.raises(Conflict) as caught:
        alloc.set_allocations(cloud, c, {}, "demo", "alice", consumer_generation=None)
    assert caught.value.code == CONCURRENT_UPDATE
    assert used(cloud, CN1)["VCPU"] == 1


# -- refusals that write nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    "allocations",
    [
        {CN1: {"VCPU": 9}},  # capacity int(4 * 2.0) = 8
        {CN2: {"DISK_GB": 91}},  # capacity 100 - 10 = 90
        {PARKED: {"CUSTOM_BAREMETAL_GOLD": 1}},  # capacity 1 - 1 = 0
        {CN1: {"MEMORY_MB": 128}},  # below min_unit 256
        {CN1: {"MEMORY_MB": 2304}},  # above max_unit 2048 (on the step: 9 x 256)
        {CN1: {"MEMORY_MB": 300}},  # not a multiple of step_size 256
        {CN1: {"DISK_GB": 1}},  # cn1 has no DISK_GB inventory
        {CN1: {"VCPU": 1}, CN2: {"VCPU": 5}},  # one part fits, the other (5 > 4) does not
    ],
    ids=["beyond ratio capacity", "beyond reserved capacity", "parked node", "below min_unit",
         "above max_unit", "off step_size", "class the provider lacks", "partly beyond capacity"],
)
def test_refused_claims_are_conflicts_and_write_nothing(cloud, allocations):
    before = state(cloud)
    c = new_consumer()
    with pytest.raises(Conflict) as caught:
        alloc.set_allocations(cloud, c, allocations, "demo", "alice")
    assert caught.value.status == 409
    assert caught.value.detail.startswith("Unable to allocate inventory")
    assert alloc.get_allocations(cloud, c) == NOTHING
    assert state(cloud) == before


def test_capacity_counts_other_consumers(cloud):
    alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 6, "MEMORY_MB": 2048}}, "demo", "alice")
    before = state(cloud)
    with pytest.raises(Conflict):
        alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 3}}, "demo", "bob")  # 6 + 3 > 8
    with pytest.raises(Conflict):
        alloc.set_allocations(cloud, new_consumer(), {CN1: {"MEMORY_MB": 1792}}, "demo", "bob")  # 2048 + 1792 > 3584
    assert state(cloud) == before
    alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 2, "MEMORY_MB": 1536}}, "demo", "bob")  # exactly full
    assert used(cloud, CN1) == {"VCPU": 8, "MEMORY_MB": 3584}


def test_unknown_provider_is_a_bad_request(cloud):
    before = state(cloud)
    missing = str(uuid.UUID(int=42))
    with pytest.raises(BadRequest) as caught:
        alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 1}, missing: {"VCPU": 1}}, "demo", "alice")
    assert caught.value.status == 400
    assert missing in caught.value.detail
    assert state(cloud) == before


@pytest.mark.parametrize(
    "consumer, allocations",
    [
        ("not-a-uuid", {CN1: {"VCPU": 1}}),
        (None, {"cn1": {"VCPU": 1}}),  # providers are named by UUID in the API
        (None, {CN1: {"VCPU": 0}}),  # amounts are integers >= 1
        (None, {CN1: {"VCPU": 1.5}}),
    ],
    ids=["malformed consumer", "provider by name", "zero amount", "fractional amount"],
)
def test_malformed_requests_are_bad_requests(cloud, consumer, allocations):
    before = state(cloud)
    with pytest.raises(BadRequest) as caught:
        alloc.set_allocations(cloud, consumer or new_consumer(), allocations, "demo", "alice")
    assert caught.value.status == 400
    assert state(cloud) == before


# -- usages -------------------------------------------------------------------------------------


def test_usages_grouped_by_consumer_type(cloud):
    put = alloc.set_allocations
    put(cloud, new_consumer(), {CN1: {"VCPU": 2, "MEMORY_MB": 512}}, "demo", "alice")
    put(cloud, new_consumer(), {CN1: {"VCPU": 1}, CN2: {"DISK_GB": 10}}, "demo", "bob")
    put(cloud, new_consumer(), {CN2: {"VCPU": 1}}, "demo", "alice", consumer_type="MIGRATION")
    put(cloud, new_consumer(), {CN2: {"VCPU": 3}}, "research", "carol")

    # Placement 1.38: per consumer type, the sum per class and the number of
    # distinct consumers of that type (not one count per class).
    assert usages.usages_by_consumer_type(cloud, "demo") == {
        "usages": {
            "INSTANCE": {"VCPU": 3, "MEMORY_MB": 512, "DISK_GB": 10, "consumer_count": 2},
            "MIGRATION": {"VCPU": 1, "consumer_count": 1},
        }
    }
    assert usages.usages_by_consumer_type(cloud, "demo", "alice") == {
        "usages": {
            "INSTANCE": {"VCPU": 2, "MEMORY_MB": 512, "consumer_count": 1},
            "MIGRATION": {"VCPU": 1, "consumer_count": 1},
        }
    }
    assert usages.usages_by_consumer_type(cloud, "research") == {"usages": {"INSTANCE": {"VCPU": 3, "consumer_count": 1}}}
    assert usages.usages_by_consumer_type(cloud, "nobody") == {"usages": {}}


def test_provider_usages(cloud):
    alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 2}}, "demo", "alice")
    alloc.set_allocations(cloud, new_consumer(), {CN1: {"VCPU": 3, "MEMORY_MB": 256}}, "demo", "bob")
    body = usages.provider_usages(cloud, CN1)
    # Two writes touched cn1, starting from generation 0.
    assert body == {"resource_provider_generation": 2, "usages": {"VCPU": 5, "MEMORY_MB": 256}}
    # Every inventory is listed, unused ones with 0.
    assert usages.provider_usages(cloud, PARKED)["usages"] == {"CUSTOM_BAREMETAL_GOLD": 0}
    with pytest.raises(NotFound) as caught:
        usages.provider_usages(cloud, str(uuid.UUID(int=99)))
    assert caught.value.status == 404


# -- concurrency --------------------------------------------------------------------------------

THREADS = 16


def _race(graph, claims: list[tuple[str, dict]]) -> list[object]:
    """Run each claim in its own thread (its own transaction), all released at once.

    Each claim is for a project of its own, so that only the providers' locks
    (not a per-project quota lock) stand between the claims.
    """
    start = threading.Barrier(len(claims))
    results: list[object] = [None] * len(claims)

    def run(i, consumer, allocations):
        start.wait(timeout=30)
        try:
            alloc.set_allocations(graph, consumer, allocations, f"project{i}", f"user{i}")
            results[i] = "ok"
        except BaseException as error:  # noqa: BLE001 - the test inspects every outcome
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, c, a)) for i, (c, a) in enumerate(claims)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a claim hung"
    return results


def _check_race(results, expected_ok):
    failures = [r for r in results if r != "ok"]
    assert all(type(r) is Conflict for r in failures), [repr(r) for r in failures if type(r) is not Conflict]
    assert all("exceed the capacity" in r.detail for r in failures)
    assert len(results) - len(failures) == expected_ok


def test_concurrent_claims_never_overcommit(cloud):
    claims = [(new_consumer(), {HOT: {"VCPU": 1}}) for _ in range(THREADS)]
    results = _race(cloud, claims)
    # Room for HOT_CAPACITY one-unit claims: exactly that many win, the rest
    # get a clean 409, and usage ends at capacity, not beyond.
    _check_race(results, HOT_CAPACITY)
    assert used(cloud, HOT) == {"VCPU": HOT_CAPACITY}
    winners = {c for (c, _), r in zip(claims, results) if r == "ok"}
    holders = cloud.read("MATCH (c:Consumer)-[:CONSUMES]->() RETURN DISTINCT c.uuid AS uuid")
    assert {r["uuid"] for r in holders} == winners


def test_concurrent_claims_on_two_providers_in_both_orders(cloud):
    # Half the claims name hot first, half hot2 first: locks are taken in a
    # fixed order, so nobody deadlocks and nobody sees a non-409 error.
    claims = [
        (new_consumer(), {HOT: {"VCPU": 1}, HOT2: {"VCPU": 1}} if i % 2 else {HOT2: {"VCPU": 1}, HOT: {"VCPU": 1}})
        for i in range(THREADS)
    ]
    results = _race(cloud, claims)
    _check_race(results, HOT_CAPACITY)
    assert used(cloud, HOT) == used(cloud, HOT2) == {"VCPU": HOT_CAPACITY}


def test_two_creators_of_the_same_consumer_cannot_both_win(cloud, monkeypatch):
    c = new_consumer()
    # Make the interleaving deterministic: each writer, right after its own
    # generation check (inside its transaction), waits until the other has
    # checked too, so both have seen "the consumer does not exist" before
    # either writes. An engine that serialises the two earlier simply times
    # out here and carries on.
    both_checked = threading.Barrier(2)
    original = consumers.check_generation

    def check_then_wait(tx, uuid, expected):
        original(tx, uuid, expected)
        try:
            both_checked.wait(timeout=5)
        except threading.BrokenBarrierError:
            pass

    monkeypatch.setattr(consumers, "check_generation", check_then_wait)
    results: dict[str, object] = {}

    def run(rp, project):
        try:
            alloc.set_allocations(cloud, c, {rp: {"VCPU": 1}}, project, "alice")
            results[rp] = "ok"
        except BaseException as error:  # noqa: BLE001
            results[rp] = error

    threads = [threading.Thread(target=run, args=(rp, f"p-{i}")) for i, rp in enumerate((CN1, CN2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    outcomes = sorted("ok" if o == "ok" else type(o).__name__ for o in results.values())
    assert outcomes == ["Conflict", "ok"], results
    (conflict,) = [o for o in results.values() if o != "ok"]
    assert conflict.code == CONCURRENT_UPDATE


# -- consumers without a type, reading by provider -----------------------------------------------


def test_a_consumer_written_without_a_type_is_unknown_and_keeps_what_it_has(cloud):
    c = new_consumer()
    # Before microversion 1.38 no type is sent: Placement shows such a consumer as "unknown".
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 1}}, "demo", "alice", consumer_type=None)
    assert alloc.get_allocations(cloud, c)["consumer_type"] == "unknown"
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 2}}, "demo", "alice", consumer_type="MIGRATION",
                          consumer_generation=1)  # fmt: skip
    # A later write without a type leaves the type alone (and, before 1.28, skips the generation check).
    alloc.set_allocations(cloud, c, {CN1: {"VCPU": 3}}, "demo", "bob", consumer_type=None,
                          consumer_generation=consumers.UNCHECKED)  # fmt: skip
    body = alloc.get_allocations(cloud, c)
    assert (body["consumer_type"], body["user_id"], body["consumer_generation"]) == ("MIGRATION", "bob", 3)


def test_allocations_of_a_provider(cloud):
    a, b = new_consumer(), new_consumer()
    alloc.set_allocations(cloud, a, {CN1: {"VCPU": 2}, CN2: {"VCPU": 1}}, "demo", "alice")
    alloc.set_allocations(cloud, b, {CN1: {"VCPU": 1, "MEMORY_MB": 256}}, "demo", "bob")
    assert alloc.provider_allocations(cloud, CN1) == {
        "resource_provider_generation": 2,  # two writes gave it allocations
        "allocations": {
            a: {"resources": {"VCPU": 2}, "consumer_generation": 1},
            b: {"resources": {"VCPU": 1, "MEMORY_MB": 256}, "consumer_generation": 1},
        },
    }
    assert alloc.provider_allocations(cloud, PARKED)["allocations"] == {}
    with pytest.raises(NotFound):
        alloc.provider_allocations(cloud, str(uuid.UUID(int=99)))


# -- the reshaper -------------------------------------------------------------------------------


ALL_INVENTORIES = "MATCH (p:Provider)-[:HAS_INVENTORY]->(i) RETURN p.uuid, i {.*} ORDER BY p.uuid, i.resource_class"


def reshape_cloud(graph):
    """cn1's VCPU about to move to a new child, with a consumer holding some of it."""
    loader.load(
        graph,
        parse({"providers": [{"name": "node", "inventories": {"VCPU": 8, "DISK_GB": 100},
                              "children": [{"name": "numa0"}]}]}),  # fmt: skip
    )
    node = graph.read("MATCH (p:Provider {name: 'node'}) RETURN p.uuid AS u")[0]["u"]
    numa0 = graph.read("MATCH (p:Provider {name: 'numa0'}) RETURN p.uuid AS u")[0]["u"]
    vm = new_consumer()
    alloc.set_allocations(graph, vm, {node: {"VCPU": 2, "DISK_GB": 10}}, "demo", "alice")  # node: generation 1
    return node, numa0, vm


def moved(vm, node, numa0, vcpu_to=None):
    return {vm: {"allocations": {node: {"DISK_GB": 10}, (vcpu_to or numa0): {"VCPU": 2}},
                 "project_id": "demo", "user_id": "alice", "consumer_type": "INSTANCE",
                 "consumer_generation": 1}}  # fmt: skip


def test_reshape_moves_inventory_and_allocations_together(graph):
    node, numa0, vm = reshape_cloud(graph)
    reshaper.reshape(
        graph,
        {node: {"resource_provider_generation": 1, "inventories": {"DISK_GB": {"total": 100}}},
         numa0: {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}}},  # fmt: skip
        moved(vm, node, numa0),
    )
    assert used(graph, node) == {"DISK_GB": 10}
    assert used(graph, numa0) == {"VCPU": 2}
    # Placement's generations: the interim inventory, the allocations and the
    # final inventory each bump a provider they touch: 1 + 3 and 0 + 3.
    assert generations(graph)[node] == 4 and generations(graph)[numa0] == 3
    assert alloc.get_allocations(graph, vm)["consumer_generation"] == 2


@pytest.mark.parametrize(
    "case",
    ["stale provider generation", "allocations left on a class that goes", "beyond the new capacity"],
)
def test_a_refused_reshape_changes_nothing(graph, case):
    node, numa0, vm = reshape_cloud(graph)
    inventories = {
        node: {"resource_provider_generation": 1, "inventories": {"DISK_GB": {"total": 100}}},
        numa0: {"resource_provider_generation": 0, "inventories": {"VCPU": {"total": 8}}},
    }
    consumers = moved(vm, node, numa0)
    if case == "stale provider generation":
        inventories[node]["resource_provider_generation"] = 0
        expected = (Conflict, f"resource provider generation conflict for provider {node}: actual: 1, given: 0")
    elif case == "allocations left on a class that goes":
        consumers = moved(vm, node, numa0, vcpu_to=node)  # the VCPU stays on node, whose VCPU is removed
        expected = (Conflict, f"update conflict: Inventory for 'VCPU' on resource provider '{node}' in use.")
    else:
        inventories[numa0]["inventories"]["VCPU"]["total"] = 1
        expected = (Conflict, f"Unable to create allocation for 'VCPU' on resource provider '{numa0}'. "
                              "The requested amount would exceed the capacity.")  # fmt: skip
    before = state(graph)
    inventory_before = graph.read(ALL_INVENTORIES)
    with pytest.raises(expected[0]) as caught:
        reshaper.reshape(graph, inventories, consumers)
    assert expected[1] in caught.value.detail
    assert state(graph) == before
    assert graph.read(ALL_INVENTORIES) == inventory_before
