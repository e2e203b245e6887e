"""Provider, inventory, trait and aggregate writes: the graph engine against the real Placement.

Gabbi-style: each test is a sequence of operations, and every operation is
made twice, on the graph engine (``workbench.engine.providers`` /
``inventories``) and on the real Placement 16.0.0 in-process (microversion
1.39). The two must agree on the outcome: success, or the same HTTP status
and the same Placement error code; where the answer has a body, the bodies
must agree too. So every expected value comes from Placement itself; the
``expect=`` given with each step is what Placement's gabbi files and
handlers say it answers (``resource-provider.yaml``, ``inventory.yaml``,
``traits.yaml``, ``aggregate.yaml``), and it is checked against the oracle,
so a step where both engines wrongly succeed cannot pass.
"""

from __future__ import annotations

import threading

import pytest

from workbench.engine import allocations
from workbench.engine import inventories as inv
from workbench.engine import providers as rp
from workbench.engine import usages
from workbench.engine.errors import PlacementError
from workbench.comparison.oracle import PlacementOracle

# Fixed UUIDs, so both engines name the same providers.
ROOT = "7f3e0d8a-1c2b-4a5e-9f10-000000000001"
CHILD = "7f3e0d8a-1c2b-4a5e-9f10-000000000002"
GRANDCHILD = "7f3e0d8a-1c2b-4a5e-9f10-000000000003"
OTHER = "7f3e0d8a-1c2b-4a5e-9f10-000000000004"
MISSING = "7f3e0d8a-1c2b-4a5e-9f10-0000000000ff"
AGG1 = "a99e0000-0000-4000-8000-000000000001"
AGG2 = "a99e0000-0000-4000-8000-000000000002"
CONSUMER = "c0c0c0c0-0000-4000-8000-000000000001"
PROJECT, USER = "proj", "user"

OK = "ok"
PROVIDER_FIELDS = ("uuid", "name", "generation", "parent_provider_uuid", "root_provider_uuid")


class Both:
    """The graph engine and the real Placement, driven side by side."""

    def __init__(self, graph, oracle: PlacementOracle):
        self.graph, self.oracle = graph, oracle

    def do(self, ours, method: str, path: str, body=None, expect=OK, microversion=None):
        """Run ``ours(graph)`` and ``method path body`` on Placement; both must give ``expect``.

        ``expect`` is OK (any 2xx) or ``(status, code)``. Returns (our
        result or error, Placement's body). Placement is asked at
        ``microversion`` (default 1.39).
        """
        status, theirs = self.oracle.request(method, path, body, microversion)
        placement = OK if 200 <= status < 300 else (status, theirs["errors"][0]["code"])
        assert placement == expect, f"Placement answered {method} {path} with {status}: {theirs}"
        try:
            result = ours(self.graph)
            outcome = OK
        except PlacementError as exc:
            result, outcome = exc, (exc.status, exc.code)
        assert outcome == placement, f"graph: {outcome} {result}; Placement: {status} {theirs}"
        return result, theirs

    # -- the operations, each on both engines -----------------------------------------
    def create(self, name, uuid, parent=None, expect=OK):
        body = {"name": name, "uuid": uuid}
        if parent is not None:
            body["parent_provider_uuid"] = parent
        ours, theirs = self.do(lambda g: rp.create_provider(g, name, uuid, parent), "POST", "/resource_providers",
                               body, expect)
        if expect == OK:
            assert ours == provider_body(theirs)
        return ours

    def get(self, uuid, expect=OK):
        ours, theirs = self.do(lambda g: rp.get_provider(g, uuid), "GET", f"/resource_providers/{uuid}",
                               expect=expect)
        if expect == OK:
            assert ours == provider_body(theirs)
        return ours

    def update(self, uuid, name, parent=rp.KEEP, expect=OK):
        body = {"name": name}
        if parent is not rp.KEEP:
            body["parent_provider_uuid"] = parent
        ours, theirs = self.do(lambda g: rp.update_provider(g, uuid, name, parent), "PUT",
                               f"/resource_providers/{uuid}", body, expect)
        if expect == OK:
            assert ours == provider_body(theirs)
        return ours

    def delete(self, uuid, expect=OK):
        self.do(lambda g: rp.delete_provider(g, uuid), "DELETE", f"/resource_providers/{uuid}", expect=expect)

    def put_inventories(self, uuid, inventories, generation, expect=OK):
        body = {"resource_provider_generation": generation, "inventories": inventories}
        ours, theirs = self.do(lambda g: inv.set_inventories(g, uuid, inventories, generation), "PUT",
                               f"/resource_providers/{uuid}/inventories", body, expect)
        if expect == OK:
            assert ours == theirs
        return ours

    def put_inventory(self, uuid, rc, fields, generation, expect=OK):
        body = {"resource_provider_generation": generation, **fields}
        ours, theirs = self.do(lambda g: inv.set_inventory(g, uuid, rc, fields, generation), "PUT",
                               f"/resource_providers/{uuid}/inventories/{rc}", body, expect)
        if expect == OK:
            assert ours == theirs
        return ours

    def delete_inventory(self, uuid, rc, expect=OK):
        self.do(lambda g: inv.delete_inventory(g, uuid, rc), "DELETE",
                f"/resource_providers/{uuid}/inventories/{rc}", expect=expect)

    def inventories(self, uuid, expect=OK):
        ours, theirs = self.do(lambda g: inv.get_inventories(g, uuid), "GET",
                               f"/resource_providers/{uuid}/inventories", expect=expect)
        if expect == OK:
            assert ours == theirs
        return ours

    def resource_class(self, name, expect=OK):
        ours, _ = self.do(lambda g: inv.create_resource_class(g, name), "PUT", f"/resource_classes/{name}",
                          expect=expect)
        return ours

    def put_traits(self, uuid, traits, generation, expect=OK):
        body = {"resource_provider_generation": generation, "traits": traits}
        ours, theirs = self.do(lambda g: rp.set_traits(g, uuid, traits, generation), "PUT",
                               f"/resource_providers/{uuid}/traits", body, expect)
        if expect == OK:
            assert sorted(ours["traits"]) == sorted(theirs["traits"])
            assert ours["resource_provider_generation"] == theirs["resource_provider_generation"]
        return ours

    def traits(self, uuid, expect=OK):
        ours, theirs = self.do(lambda g: rp.get_traits(g, uuid), "GET", f"/resource_providers/{uuid}/traits",
                               expect=expect)
        if expect == OK:
            assert sorted(ours["traits"]) == sorted(theirs["traits"])
            assert ours["resource_provider_generation"] == theirs["resource_provider_generation"]
        return ours

    def put_aggregates(self, uuid, aggregates, generation, expect=OK):
        body = {"resource_provider_generation": generation, "aggregates": aggregates}
        ours, theirs = self.do(lambda g: rp.set_aggregates(g, uuid, aggregates, generation), "PUT",
                               f"/resource_providers/{uuid}/aggregates", body, expect)
        if expect == OK:
            assert sorted(ours["aggregates"]) == sorted(theirs["aggregates"])
            assert ours["resource_provider_generation"] == theirs["resource_provider_generation"]
        return ours

    def aggregates(self, uuid, expect=OK):
        ours, theirs = self.do(lambda g: rp.get_aggregates(g, uuid), "GET",
                               f"/resource_providers/{uuid}/aggregates", expect=expect)
        if expect == OK:
            assert sorted(ours["aggregates"]) == sorted(theirs["aggregates"])
            assert ours["resource_provider_generation"] == theirs["resource_provider_generation"]
        return ours

    def list(self, query: str, **filters):
        """``GET /resource_providers?query`` against ``list_providers(**filters)``: the same providers."""
        ours, theirs = self.do(lambda g: rp.list_providers(g, **filters), "GET", f"/resource_providers?{query}")
        assert sorted(ours, key=lambda p: p["uuid"]) == sorted(
            (provider_body(p) for p in theirs["resource_providers"]), key=lambda p: p["uuid"]
        ), query
        return {p["uuid"] for p in ours}

    def allocate(self, consumer, amounts, expect=OK):
        """``PUT /allocations/{consumer}`` on both (``amounts``: {provider: {rc: n}})."""
        status, theirs = self.oracle.put_allocations(consumer, amounts, PROJECT, USER)
        placement = OK if 200 <= status < 300 else (status, theirs["errors"][0]["code"])
        assert placement == expect, f"Placement answered {status}: {theirs}"
        try:
            allocations.set_allocations(self.graph, consumer, amounts, PROJECT, USER)
            outcome = OK
        except PlacementError as exc:
            outcome = (exc.status, exc.code)
        assert outcome == placement

    def release(self, consumer):
        status, theirs = self.oracle.request("DELETE", f"/allocations/{consumer}")
        assert status == 204, theirs
        allocations.delete_allocations(self.graph, consumer)

    def usages(self, uuid):
        ours = usages.provider_usages(self.graph, uuid)
        theirs = self.oracle.provider_usages(uuid)
        assert ours == theirs
        return ours


def provider_body(body: dict) -> dict:
    return {field: body[field] for field in PROVIDER_FIELDS}


@pytest.fixture
def both(graph):
    with PlacementOracle() as oracle:
        yield Both(graph, oracle)


def conflict(code="placement.concurrent_update"):
    return (409, code)


BAD = (400, "placement.undefined_code")
NOT_FOUND = (404, "placement.undefined_code")


# -- providers ----------------------------------------------------------------------------


def test_create_root_and_child_and_read_them_back(both):
    root = both.create("root", ROOT)
    assert root["generation"] == 0 and root["root_provider_uuid"] == ROOT
    both.create("child", CHILD, parent=ROOT)
    both.create("grandchild", GRANDCHILD, parent=CHILD)
    assert both.get(GRANDCHILD)["root_provider_uuid"] == ROOT
    both.get(MISSING, expect=NOT_FOUND)


def test_create_accepts_an_undashed_upper_case_uuid_and_returns_it_canonical(both):
    undashed = ROOT.replace("-", "").upper()
    ours, theirs = both.do(lambda g: rp.create_provider(g, "root", undashed), "POST", "/resource_providers",
                           {"name": "root", "uuid": undashed})
    assert ours == provider_body(theirs) and ours["uuid"] == ROOT


def test_duplicate_name_or_uuid_is_a_conflict(both):
    both.create("root", ROOT)
    both.create("root", OTHER, expect=conflict("placement.duplicate_name"))
    both.create("other", ROOT, expect=conflict("placement.duplicate_name"))
    both.create("root", ROOT, expect=conflict("placement.duplicate_name"))
    both.create("other", OTHER)  # nothing was left behind by the refusals


def test_unknown_or_own_parent_is_a_bad_request(both):
    both.create("child", CHILD, parent=MISSING, expect=BAD)
    both.create("child", CHILD, parent=CHILD, expect=BAD)
    both.get(CHILD, expect=NOT_FOUND)


@pytest.mark.parametrize(
    "name, uuid",
    [("", ROOT), ("x" * 201, ROOT), ("root", "not-a-uuid"), ("root", ""), (17, ROOT)],
    ids=["empty-name", "name-too-long", "bad-uuid", "empty-uuid", "name-not-a-string"],
)
def test_invalid_create_is_refused(both, name, uuid):
    both.do(lambda g: rp.create_provider(g, name, uuid), "POST", "/resource_providers",
            {"name": name, "uuid": uuid}, expect=BAD)
    both.get(ROOT, expect=NOT_FOUND)


def test_name_of_200_characters_is_accepted(both):
    both.create("x" * 200, ROOT)


def test_rename(both):
    both.create("root", ROOT)
    both.create("other", OTHER)
    renamed = both.update(ROOT, "renamed")
    assert renamed["name"] == "renamed"
    both.update(ROOT, "other", expect=conflict("placement.duplicate_name"))
    both.update(ROOT, "x" * 201, expect=BAD)
    both.update(MISSING, "whatever", expect=NOT_FOUND)
    both.get(ROOT)  # still "renamed", generation as Placement has it


def test_reparent_to_another_tree_moves_the_subtree(both):
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    both.create("grandchild", GRANDCHILD, parent=CHILD)
    both.create("other", OTHER)
    moved = both.update(CHILD, "child", parent=OTHER)
    assert moved["root_provider_uuid"] == OTHER
    assert both.get(GRANDCHILD)["root_provider_uuid"] == OTHER
    both.get(ROOT)
    both.delete(ROOT)  # no children left under it


def test_unparent_makes_a_new_root(both):
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    both.create("grandchild", GRANDCHILD, parent=CHILD)
    freed = both.update(CHILD, "child", parent=None)
    assert freed["parent_provider_uuid"] is None and freed["root_provider_uuid"] == CHILD
    assert both.get(GRANDCHILD)["root_provider_uuid"] == CHILD
    # Then back under its old parent (gabbi: "re-parent back to its original parent after un-parent").
    both.update(CHILD, "child", parent=ROOT)
    both.get(GRANDCHILD)


def test_omitting_the_parent_keeps_it(both):
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    assert both.update(CHILD, "renamed child")["parent_provider_uuid"] == ROOT


def test_reparent_into_own_subtree_is_refused(both):
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    both.create("grandchild", GRANDCHILD, parent=CHILD)
    both.update(ROOT, "root", parent=GRANDCHILD, expect=BAD)
    both.update(ROOT, "root", parent=CHILD, expect=BAD)
    both.update(CHILD, "child", parent=CHILD, expect=BAD)
    both.update(CHILD, "child", parent=MISSING, expect=BAD)
    both.update(CHILD, "child", parent="not-a-uuid", expect=BAD)
    for uuid in (ROOT, CHILD, GRANDCHILD):
        both.get(uuid)  # the tree is unchanged


def test_delete_refused_while_it_has_children(both):
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    both.delete(ROOT, expect=conflict("placement.resource_provider.cannot_delete_parent"))
    both.delete(CHILD)
    both.delete(ROOT)
    both.get(ROOT, expect=NOT_FOUND)
    both.delete(ROOT, expect=NOT_FOUND)


def test_delete_refused_while_it_has_allocations(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4}}, 0)
    both.allocate(CONSUMER, {ROOT: {"VCPU": 2}})
    both.delete(ROOT, expect=conflict("placement.resource_provider.inuse"))
    both.inventories(ROOT)  # untouched by the refused delete
    both.release(CONSUMER)
    both.delete(ROOT)
    both.inventories(ROOT, expect=NOT_FOUND)


def test_delete_removes_inventories_and_links(both):
    both.create("root", ROOT)
    gen = both.put_inventories(ROOT, {"VCPU": {"total": 4}, "DISK_GB": {"total": 100}}, 0)
    gen = both.put_traits(ROOT, ["HW_CPU_X86_AVX"], gen["resource_provider_generation"])
    both.put_aggregates(ROOT, [AGG1], gen["resource_provider_generation"])
    both.delete(ROOT)
    both.traits(ROOT, expect=NOT_FOUND)
    both.aggregates(ROOT, expect=NOT_FOUND)
    # The same name and UUID can be used again, and start empty.
    both.create("root", ROOT)
    both.inventories(ROOT)
    both.traits(ROOT)
    both.aggregates(ROOT)
    left = both.graph.read(
        "RETURN COUNT { (:Inventory) } AS inventories, COUNT { ()-[:HAS_TRAIT|MEMBER_OF]->() } AS links"
    )[0]
    assert left == {"inventories": 0, "links": 0}


# -- inventories --------------------------------------------------------------------------


def test_put_inventories_fills_in_placement_defaults(both):
    both.create("root", ROOT)
    body = both.put_inventories(ROOT, {"VCPU": {"total": 8}, "MEMORY_MB": {"total": 4096, "max_unit": 2048}}, 0)
    assert body["inventories"]["VCPU"] == {
        "total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647, "step_size": 1, "allocation_ratio": 1.0,
    }  # inventory.yaml: "get list of inventories" after posting only total
    both.inventories(ROOT)
    # PUT replaces the whole set: MEMORY_MB goes, DISK_GB comes.
    both.put_inventories(ROOT, {"VCPU": {"total": 4}, "DISK_GB": {"total": 10}}, 1)
    assert set(both.inventories(ROOT)["inventories"]) == {"VCPU", "DISK_GB"}


def test_reserved_may_equal_total_but_not_exceed_it(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4, "reserved": 4}}, 0)  # 1.26+
    both.put_inventories(ROOT, {"VCPU": {"total": 4, "reserved": 5}}, 1, expect=BAD)
    both.put_inventory(ROOT, "VCPU", {"total": 4, "reserved": 5}, 1, expect=BAD)
    both.inventories(ROOT)  # still reserved == total, generation 1


@pytest.mark.parametrize(
    "fields",
    [
        {"total": 0},
        {"total": 4, "min_unit": 0},
        {"total": 4, "max_unit": 0},
        {"total": 4, "step_size": 0},
        {"total": 4, "reserved": -1},
        {"total": 2147483648},
        {"total": 4.5},
        {"total": True},
        {"reserved": 1},
        {"total": 4, "colour": "blue"},
        {"total": 4, "allocation_ratio": "2"},
        {"total": 4, "allocation_ratio": 1e39},
        {"total": 4, "allocation_ratio": -1.0},
    ],
    ids=[
        "total-0", "min_unit-0", "max_unit-0", "step_size-0", "reserved-negative", "total-too-big",
        "total-fraction", "total-bool", "no-total", "unknown-field", "ratio-string", "ratio-too-big",
        "ratio-negative",
    ],
)
def test_invalid_inventory_is_refused(both, fields):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 2}}, 0)
    both.put_inventories(ROOT, {"VCPU": fields, "DISK_GB": {"total": 10}}, 1, expect=BAD)
    both.put_inventory(ROOT, "VCPU", fields, 1, expect=BAD)
    both.inventories(ROOT)  # unchanged, generation still 1


def test_placement_does_not_relate_min_unit_max_unit_and_step_size(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4, "min_unit": 3, "max_unit": 1, "step_size": 7}}, 0)
    both.put_inventories(ROOT, {"VCPU": {"total": 4.0, "allocation_ratio": 0}}, 1)  # integral float, ratio 0
    both.inventories(ROOT)


def test_unknown_resource_class_is_refused_until_created(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 2}, "CUSTOM_MAGIC": {"total": 1}}, 0, expect=BAD)
    both.put_inventories(ROOT, {"vcpu": {"total": 2}}, 0, expect=BAD)
    both.inventories(ROOT)  # nothing written, generation 0
    both.resource_class("VCPU", expect=BAD)  # standard names cannot be created
    both.resource_class("CUSTOM_magic", expect=BAD)
    assert both.resource_class("CUSTOM_MAGIC") is True  # Placement: 201
    assert both.resource_class("CUSTOM_MAGIC") is False  # Placement: 204
    both.put_inventories(ROOT, {"VCPU": {"total": 2}, "CUSTOM_MAGIC": {"total": 1}}, 0)


def test_put_one_inventory_updates_only_an_existing_one(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 2}}, 0)
    both.put_inventory(ROOT, "VCPU", {"total": 8, "allocation_ratio": 2.0}, 1)
    both.put_inventory(ROOT, "DISK_GB", {"total": 8}, 2, expect=BAD)  # not on this provider
    both.put_inventory(ROOT, "CUSTOM_NOPE", {"total": 8}, 2, expect=NOT_FOUND)  # no such class
    both.put_inventory(MISSING, "VCPU", {"total": 8}, 0, expect=NOT_FOUND)
    both.inventories(ROOT)


def test_delete_one_inventory(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 2}, "DISK_GB": {"total": 10}}, 0)
    both.delete_inventory(ROOT, "DISK_GB")
    both.delete_inventory(ROOT, "DISK_GB", expect=NOT_FOUND)
    both.delete_inventory(ROOT, "CUSTOM_NOPE", expect=NOT_FOUND)
    both.delete_inventory(MISSING, "VCPU", expect=NOT_FOUND)
    assert both.inventories(ROOT)["resource_provider_generation"] == 2


def test_inventory_in_use_cannot_be_removed(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4}, "DISK_GB": {"total": 10}}, 0)
    both.allocate(CONSUMER, {ROOT: {"VCPU": 2}})
    generation = both.inventories(ROOT)["resource_provider_generation"]
    # PUT without the class: placement.inventory.inuse.
    both.put_inventories(ROOT, {"DISK_GB": {"total": 10}}, generation,
                         expect=conflict("placement.inventory.inuse"))
    # DELETE of the class: Placement answers 409 with placement.concurrent_update
    # (handlers/inventory.py: delete_inventory), not inventory.inuse.
    both.delete_inventory(ROOT, "VCPU", expect=conflict("placement.concurrent_update"))
    both.inventories(ROOT)
    both.usages(ROOT)
    # Removing the class nobody uses is fine.
    both.put_inventories(ROOT, {"VCPU": {"total": 4}}, generation)


def test_shrinking_below_usage_is_allowed(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4}}, 0)
    both.allocate(CONSUMER, {ROOT: {"VCPU": 3}})
    generation = both.inventories(ROOT)["resource_provider_generation"]
    both.put_inventories(ROOT, {"VCPU": {"total": 2}}, generation)
    both.put_inventory(ROOT, "VCPU", {"total": 1}, generation + 1)
    assert both.usages(ROOT)["usages"] == {"VCPU": 3}
    # Over capacity now: a further claim is refused by both.
    another = "c0c0c0c0-0000-4000-8000-000000000002"
    both.allocate(another, {ROOT: {"VCPU": 1}}, expect=conflict("placement.undefined_code"))


# -- traits and aggregates ---------------------------------------------------------------


def test_unknown_trait_is_refused(both):
    both.create("root", ROOT)
    both.put_traits(ROOT, ["HW_CPU_X86_AVX", "CUSTOM_NOPE"], 0, expect=BAD)
    both.put_traits(ROOT, [""], 0, expect=BAD)
    both.put_traits(MISSING, ["HW_CPU_X86_AVX"], 0, expect=NOT_FOUND)
    assert both.traits(ROOT)["traits"] == []


def test_custom_trait_created_by_placement_rules(both):
    # Custom traits come from a scenario (the loader), so create it on both
    # the way each engine does it.
    status, body = both.oracle.request("PUT", "/traits/CUSTOM_FAST")
    assert status == 201, body
    both.graph.run("MERGE (t:Trait {name: 'CUSTOM_FAST'}) SET t.custom = true")
    both.create("root", ROOT)
    both.put_traits(ROOT, ["CUSTOM_FAST", "HW_CPU_X86_AVX", "HW_CPU_X86_AVX"], 0)
    both.traits(ROOT)


def test_aggregates(both):
    both.create("root", ROOT)
    both.put_aggregates(ROOT, [AGG1, AGG2], 0)
    both.put_aggregates(ROOT, [AGG2], 1)
    both.put_aggregates(ROOT, [AGG2, AGG2], 2, expect=BAD)
    both.put_aggregates(ROOT, ["not-a-uuid"], 2, expect=BAD)
    both.put_aggregates(MISSING, [AGG1], 0, expect=NOT_FOUND)
    assert both.aggregates(ROOT)["aggregates"] == [AGG2]


@pytest.mark.parametrize("what", ["inventories", "one-inventory", "traits", "aggregates"])
def test_stale_generation_is_a_conflict_and_changes_nothing(both, what):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4}}, 0)  # generation 1 now
    stale = 0
    if what == "inventories":
        both.put_inventories(ROOT, {"VCPU": {"total": 8}}, stale, expect=conflict())
    elif what == "one-inventory":
        both.put_inventory(ROOT, "VCPU", {"total": 8}, stale, expect=conflict())
    elif what == "traits":
        both.put_traits(ROOT, ["HW_CPU_X86_AVX"], stale, expect=conflict())
    else:
        both.put_aggregates(ROOT, [AGG1], stale, expect=conflict())
    assert both.inventories(ROOT)["inventories"]["VCPU"]["total"] == 4
    assert both.traits(ROOT)["traits"] == []
    assert both.aggregates(ROOT)["aggregates"] == []


def test_generation_bumps_as_placement_bumps_it(both):
    """After every step the graph's generation is Placement's; the comments say what Placement does."""
    both.create("root", ROOT)
    gens = [both.get(ROOT)["generation"]]
    both.put_inventories(ROOT, {"VCPU": {"total": 4}, "DISK_GB": {"total": 10}}, gens[-1])  # inventory: +1
    gens.append(both.get(ROOT)["generation"])
    both.put_inventory(ROOT, "VCPU", {"total": 6}, gens[-1])  # one inventory: +1
    gens.append(both.get(ROOT)["generation"])
    both.put_traits(ROOT, ["HW_CPU_X86_AVX"], gens[-1])  # traits changed: +1
    gens.append(both.get(ROOT)["generation"])
    both.put_traits(ROOT, ["HW_CPU_X86_AVX"], gens[-1])  # same traits: no change
    gens.append(both.get(ROOT)["generation"])
    both.put_aggregates(ROOT, [AGG1], gens[-1])  # aggregates: +1
    gens.append(both.get(ROOT)["generation"])
    both.put_aggregates(ROOT, [AGG1], gens[-1])  # same aggregates: still +1
    gens.append(both.get(ROOT)["generation"])
    both.update(ROOT, "renamed")  # rename: no change
    gens.append(both.get(ROOT)["generation"])
    both.allocate(CONSUMER, {ROOT: {"VCPU": 1}})  # allocation: +1
    gens.append(both.get(ROOT)["generation"])
    both.delete_inventory(ROOT, "DISK_GB")  # delete one inventory: +1
    gens.append(both.get(ROOT)["generation"])
    both.update(ROOT, "renamed", parent=None)  # "re-parent" a root as a root: no change
    gens.append(both.get(ROOT)["generation"])
    assert gens == [0, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7]  # what Placement answered, step by step


# -- concurrency (graph only) -------------------------------------------------------------


def test_concurrent_inventory_writers_serialise(graph):
    """Two PUTs with the same generation: the lock makes the second see the first's bump."""
    rp.create_provider(graph, "root", ROOT)
    barrier = threading.Barrier(2)
    outcomes = []

    def writer(total):
        barrier.wait()
        try:
            inv.set_inventories(graph, ROOT, {"VCPU": {"total": total}}, 0)
            outcomes.append("ok")
        except PlacementError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (4, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "placement.concurrent_update"]
    assert inv.get_inventories(graph, ROOT)["resource_provider_generation"] == 1


def test_concurrent_crosswise_reparents_cannot_make_a_loop(graph):
    """A under B and B under A at the same time: one wins, the other sees the loop."""
    rp.create_provider(graph, "a", ROOT)
    rp.create_provider(graph, "b", OTHER)
    barrier = threading.Barrier(2)
    outcomes = []

    def mover(uuid, name, parent):
        barrier.wait()
        try:
            rp.update_provider(graph, uuid, name, parent)
            outcomes.append("ok")
        except PlacementError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=mover, args=a) for a in ((ROOT, "a", OTHER), (OTHER, "b", ROOT))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str) == [400, "ok"]
    roots = graph.read("MATCH (p:Provider) WHERE NOT EXISTS { ()-[:PARENT_OF]->(p) } RETURN count(p) AS n")
    assert roots == [{"n": 1}]


# -- listing with filters (GET /resource_providers) ----------------------------------------


@pytest.fixture
def small_cloud(both):
    """Two trees and a lone root, with traits, aggregates, inventories and one allocation:

    root  [AVX, SSD] {AGG1}  VCPU 8 (4 used), DISK_GB 100 reserved 10
      child  [AVX] {AGG2}    VCPU 4 at ratio 1.5
        grandchild
    other [SSD] {AGG1, AGG2} VCPU 2 in steps of 2
    """
    both.create("root", ROOT)
    both.create("child", CHILD, parent=ROOT)
    both.create("grandchild", GRANDCHILD, parent=CHILD)
    both.create("other", OTHER)
    for uuid, traits, aggregates, inventories in (
        (ROOT, ["HW_CPU_X86_AVX", "STORAGE_DISK_SSD"], [AGG1],
         {"VCPU": {"total": 8}, "DISK_GB": {"total": 100, "reserved": 10}}),
        (CHILD, ["HW_CPU_X86_AVX"], [AGG2], {"VCPU": {"total": 4, "allocation_ratio": 1.5}}),
        (OTHER, ["STORAGE_DISK_SSD"], [AGG1, AGG2], {"VCPU": {"total": 2, "step_size": 2}}),
    ):
        gen = both.put_traits(uuid, traits, 0)["resource_provider_generation"]
        gen = both.put_aggregates(uuid, aggregates, gen)["resource_provider_generation"]
        both.put_inventories(uuid, inventories, gen)
    both.allocate(CONSUMER, {ROOT: {"VCPU": 4}})
    return both


# (query string, list_providers filters, the providers expected, as reasoned from the cloud above)
LIST_CASES = [
    ("", {}, {ROOT, CHILD, GRANDCHILD, OTHER}),
    ("name=child", {"name": "child"}, {CHILD}),
    (f"uuid={CHILD}", {"uuid": CHILD}, {CHILD}),
    (f"in_tree={GRANDCHILD}", {"in_tree": GRANDCHILD}, {ROOT, CHILD, GRANDCHILD}),
    (f"in_tree={MISSING}", {"in_tree": MISSING}, set()),
    (f"member_of={AGG1}", {"member_of": [{AGG1}]}, {ROOT, OTHER}),
    (f"member_of=in:{AGG1},{AGG2}", {"member_of": [{AGG1, AGG2}]}, {ROOT, CHILD, OTHER}),
    (f"member_of={AGG1}&member_of={AGG2}", {"member_of": [{AGG1}, {AGG2}]}, {OTHER}),
    (f"member_of=!{AGG1}", {"forbidden_aggregates": {AGG1}}, {CHILD, GRANDCHILD}),
    (f"member_of=!in:{AGG1},{AGG2}", {"forbidden_aggregates": {AGG1, AGG2}}, {GRANDCHILD}),
    ("required=HW_CPU_X86_AVX", {"required": [{"HW_CPU_X86_AVX"}]}, {ROOT, CHILD}),
    ("required=!STORAGE_DISK_SSD", {"forbidden_traits": {"STORAGE_DISK_SSD"}}, {CHILD, GRANDCHILD}),
    ("required=HW_CPU_X86_AVX,!STORAGE_DISK_SSD",
     {"required": [{"HW_CPU_X86_AVX"}], "forbidden_traits": {"STORAGE_DISK_SSD"}}, {CHILD}),
    ("required=in:HW_CPU_X86_AVX,STORAGE_DISK_SSD", {"required": [{"HW_CPU_X86_AVX", "STORAGE_DISK_SSD"}]},
     {ROOT, CHILD, OTHER}),
    # root has 8 - 4 used = 4 VCPU free; child (4 - 0) * 1.5 = 6; other 2, but only in steps of 2.
    ("resources=VCPU:1", {"resources": {"VCPU": 1}}, {ROOT, CHILD}),
    ("resources=VCPU:2", {"resources": {"VCPU": 2}}, {ROOT, CHILD, OTHER}),
    ("resources=VCPU:5", {"resources": {"VCPU": 5}}, {CHILD}),
    ("resources=VCPU:7", {"resources": {"VCPU": 7}}, set()),
    ("resources=VCPU:2,DISK_GB:90", {"resources": {"VCPU": 2, "DISK_GB": 90}}, {ROOT}),
    ("resources=DISK_GB:91", {"resources": {"DISK_GB": 91}}, set()),
    (f"resources=VCPU:2&member_of={AGG1}&required=STORAGE_DISK_SSD",
     {"resources": {"VCPU": 2}, "member_of": [{AGG1}], "required": [{"STORAGE_DISK_SSD"}]}, {ROOT, OTHER}),
]


def test_list_filters_agree_with_placement(small_cloud):
    for query, filters, expected in LIST_CASES:
        assert small_cloud.list(query, **filters) == expected, query


def test_list_with_an_unknown_trait_or_class_is_a_bad_request(small_cloud):
    small_cloud.do(lambda g: rp.list_providers(g, required=[{"CUSTOM_NOPE"}]), "GET",
                   "/resource_providers?required=CUSTOM_NOPE", expect=BAD)
    small_cloud.do(lambda g: rp.list_providers(g, forbidden_traits={"CUSTOM_NOPE"}), "GET",
                   "/resource_providers?required=!CUSTOM_NOPE", expect=BAD)
    small_cloud.do(lambda g: rp.list_providers(g, resources={"CUSTOM_NOPE": 1}), "GET",
                   "/resource_providers?resources=CUSTOM_NOPE:1", expect=BAD)


def test_before_1_37_only_a_root_may_be_given_a_parent(small_cloud):
    def update(uuid, name, parent, expect):
        small_cloud.do(lambda g: rp.update_provider(g, uuid, name, parent, allow_reparenting=False), "PUT",
                       f"/resource_providers/{uuid}", {"name": name, "parent_provider_uuid": parent},
                       expect=expect, microversion="1.36")

    update(CHILD, "child", OTHER, BAD)  # re-parenting a child
    update(CHILD, "child", None, BAD)  # un-parenting it
    update(CHILD, "child", ROOT, OK)  # naming the parent it has is no change
    update(OTHER, "other", GRANDCHILD, OK)  # a root may be adopted
    assert small_cloud.get(OTHER)["root_provider_uuid"] == ROOT


# -- inventories by microversion, and all at once ------------------------------------------


def test_delete_all_inventories(both):
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 4}, "DISK_GB": {"total": 10}}, 0)
    both.allocate(CONSUMER, {ROOT: {"VCPU": 1}})
    delete_all = lambda expect: both.do(  # noqa: E731
        lambda g: inv.delete_inventories(g, ROOT), "DELETE", f"/resource_providers/{ROOT}/inventories", expect=expect
    )
    before = both.inventories(ROOT)
    delete_all(conflict("placement.inventory.inuse"))
    assert both.inventories(ROOT) == before  # nothing changed
    both.release(CONSUMER)
    generation = both.inventories(ROOT)["resource_provider_generation"]
    delete_all(OK)
    assert both.inventories(ROOT) == {"resource_provider_generation": generation + 1, "inventories": {}}
    delete_all(OK)  # nothing left to delete: still a write, still a new generation
    assert both.inventories(ROOT)["resource_provider_generation"] == generation + 2


def test_before_1_26_reserved_must_be_below_total(both):
    both.create("root", ROOT)
    parked = {"VCPU": {"total": 4, "reserved": 4}}
    body = {"resource_provider_generation": 0, "inventories": parked}
    path = f"/resource_providers/{ROOT}/inventories"
    both.do(lambda g: inv.set_inventories(g, ROOT, parked, 0, reserved_can_be_total=False), "PUT", path, body,
            expect=BAD, microversion="1.25")
    both.do(lambda g: inv.add_inventory(g, ROOT, "VCPU", parked["VCPU"], reserved_can_be_total=False), "POST",
            path, {"resource_class": "VCPU", **parked["VCPU"]}, expect=BAD, microversion="1.25")
    both.put_inventories(ROOT, parked, 0)  # 1.26 and later


def test_before_1_19_aggregates_neither_need_nor_bump_the_generation(both):
    both.create("root", ROOT)
    ours, theirs = both.do(lambda g: rp.set_aggregates(g, ROOT, [AGG1], None), "PUT",
                           f"/resource_providers/{ROOT}/aggregates", [AGG1], microversion="1.18")
    assert theirs == {"aggregates": [AGG1]} and ours["resource_provider_generation"] == 0
    assert both.aggregates(ROOT) == {"aggregates": [AGG1], "resource_provider_generation": 0}


# -- usages ---------------------------------------------------------------------------------


def test_usages_agree_with_placement(both):
    """Provider usages, and GET /usages before 1.38 (flat) and from 1.38 (by consumer type)."""
    both.create("root", ROOT)
    both.put_inventories(ROOT, {"VCPU": {"total": 16}, "DISK_GB": {"total": 100}, "MEMORY_MB": {"total": 64}}, 0)
    consumers = [  # (uuid, project, user, consumer type or None for one written before 1.38, amounts)
        ("c0c0c0c0-0000-4000-8000-00000000000a", "p", "u1", "INSTANCE", {"VCPU": 2, "DISK_GB": 10}),
        ("c0c0c0c0-0000-4000-8000-00000000000b", "p", "u2", "MIGRATION", {"VCPU": 1}),
        ("c0c0c0c0-0000-4000-8000-00000000000c", "p", "u1", None, {"VCPU": 4}),
        ("c0c0c0c0-0000-4000-8000-00000000000d", "q", "u1", "INSTANCE", {"VCPU": 8}),
    ]
    for consumer, project, user, consumer_type, amounts in consumers:
        body = {"allocations": {ROOT: {"resources": amounts}}, "project_id": project, "user_id": user,
                "consumer_generation": None}
        if consumer_type is not None:
            body["consumer_type"] = consumer_type
        status, answer = both.oracle.request("PUT", f"/allocations/{consumer}", body,
                                             "1.38" if consumer_type else "1.37")
        assert status == 204, answer
        allocations.set_allocations(both.graph, consumer, {ROOT: amounts}, project, user, consumer_type)

    ours = usages.provider_usages(both.graph, ROOT)
    assert ours == both.oracle.provider_usages(ROOT)
    assert ours["usages"] == {"VCPU": 15, "DISK_GB": 10, "MEMORY_MB": 0}  # unused classes count, as 0

    def placement(query, microversion):
        status, body = both.oracle.request("GET", f"/usages?{query}", microversion=microversion)
        assert status == 200, body
        return body

    assert usages.total_usages(both.graph, "p") == placement("project_id=p", "1.37") == {
        "usages": {"VCPU": 7, "DISK_GB": 10}
    }
    assert usages.total_usages(both.graph, "p", "u1") == placement("project_id=p&user_id=u1", "1.37")
    by_type = usages.usages_by_consumer_type(both.graph, "p")
    assert by_type == placement("project_id=p", "1.38") == {
        "usages": {
            "INSTANCE": {"VCPU": 2, "DISK_GB": 10, "consumer_count": 1},
            "MIGRATION": {"VCPU": 1, "consumer_count": 1},
            "unknown": {"VCPU": 4, "consumer_count": 1},
        }
    }
    for consumer_type in ("all", "unknown", "INSTANCE", "MIGRATION", "NOBODY"):
        assert usages.usages_by_consumer_type(both.graph, "p", consumer_type=consumer_type) == placement(
            f"project_id=p&consumer_type={consumer_type}", "1.38"
        ), consumer_type
    assert usages.usages_by_consumer_type(both.graph, "p", "u1", "all") == placement(
        "project_id=p&user_id=u1&consumer_type=all", "1.38"
    )
    assert usages.usages_by_consumer_type(both.graph, "nobody") == placement("project_id=nobody", "1.38")
