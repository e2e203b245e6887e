"""The scenario format (workbench/scenario.py): parsing, Placement's defaults, and refusals.

Pure Python, no Neo4j. Written the way gabbi files are: documents in, expected
results out. Bad documents live in one table (``BAD``): each names the path
to the offending field and words its reason must contain; every error must
carry the file, the path and the reason.

Expectations come from Placement's rules (placement/schemas/inventory.py,
placement/objects/allocation.py) or from the format documented in
workbench/scenario.py, never from running the code.
"""

from __future__ import annotations

import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml

from workbench.scenario import MAX_INT, Inventory, ScenarioError, load_file, parse

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "scenarios" / "demo.yaml"
SOURCE = "bad.yaml"


def doc(text: str) -> dict:
    return yaml.safe_load(textwrap.dedent(text))


def parsed(text: str):
    return parse(doc(text), source="test.yaml")


def canonical(value: str) -> bool:
    return str(uuid.UUID(value)) == value


# -- valid documents ----------------------------------------------------------------


def test_shorthand_is_total_and_placement_defaults_fill_the_rest():
    s = parsed(
        """
        providers:
          - name: cn1
            inventories:
              MEMORY_MB: 65536
              VCPU: {total: 8}
        """
    )
    inv = s.provider("cn1").inventories
    # Placement's defaults when PUT /inventories gives only total:
    # reserved 0, min_unit 1, max_unit 2147483647 (its MAX_INT), step_size 1,
    # allocation_ratio 1.0.
    assert inv["MEMORY_MB"] == Inventory("MEMORY_MB", 65536, 0, 1, 2147483647, 1, 1.0)
    assert inv["VCPU"] == Inventory("VCPU", 8, 0, 1, 2147483647, 1, 1.0)
    assert MAX_INT == 2**31 - 1
    assert inv["MEMORY_MB"].capacity == 65536


def test_explicit_inventory_fields_are_kept():
    s = parsed(
        """
        providers:
          - name: cn1
            inventories:
              VCPU: {total: 16, reserved: 2, min_unit: 1, max_unit: 8, step_size: 1, allocation_ratio: 16.0}
              MEMORY_MB: {total: 4096, reserved: 512, min_unit: 256, max_unit: 2048, step_size: 256, allocation_ratio: 1.5}
        """
    )
    inv = s.provider("cn1").inventories
    assert inv["VCPU"].fields() == dict(
        total=16, reserved=2, min_unit=1, max_unit=8, step_size=1, allocation_ratio=16.0
    )
    assert inv["MEMORY_MB"].fields() == dict(
        total=4096, reserved=512, min_unit=256, max_unit=2048, step_size=256, allocation_ratio=1.5
    )
    # An integer ratio is a number too; it is kept as a float.
    s = parsed("providers: [{name: cn1, inventories: {VCPU: {total: 4, allocation_ratio: 2}}}]")
    assert s.provider("cn1").inventories["VCPU"].allocation_ratio == 2.0


@pytest.mark.parametrize(
    "total, reserved, ratio, capacity",
    [
        (16, 0, 16.0, 256),  # VCPU overcommit 16:1
        (65536, 512, 1.5, 97536),  # (65536 - 512) * 1.5
        (3, 0, 1.5, 4),  # int() truncates 4.5
        (10, 2, 0.5, 4),  # undercommit
        (1, 1, 1.0, 0),  # Ironic node parked for cleaning
    ],
)
def test_capacity_is_placements_formula(total, reserved, ratio, capacity):
    # Placement: capacity = int((total - reserved) * allocation_ratio).
    assert Inventory("VCPU", total, reserved, allocation_ratio=ratio).capacity == capacity


def test_reserved_equal_to_total_is_accepted():
    # Since microversion 1.26 Placement accepts reserved == total (Ironic
    # parks nodes that way); only reserved > total is refused.
    s = parsed("providers: [{name: bm1, inventories: {CUSTOM_BAREMETAL_GOLD: {total: 1, reserved: 1}}}]")
    inv = s.provider("bm1").inventories["CUSTOM_BAREMETAL_GOLD"]
    assert (inv.total, inv.reserved, inv.capacity) == (1, 1, 0)


def test_derived_uuids_are_deterministic_and_differ_per_kind_and_name():
    text = """
        providers:
          - {name: x, aggregates: [x], inventories: {VCPU: 1}}
          - {name: y, aggregates: [y]}
        consumers:
          - {name: x, project: p, user: u, allocations: {x: {VCPU: 1}}}
        """
    first, second = parsed(text), parsed(text)
    assert [p.uuid for p in first.providers] == [p.uuid for p in second.providers]
    assert first.consumers[0].uuid == second.consumers[0].uuid
    assert first.aggregate_names == second.aggregate_names

    provider_x = first.provider("x").uuid
    (aggregate_x,) = first.provider("x").aggregates
    consumer_x = first.consumers[0].uuid
    # The same name means different things for a provider, an aggregate and a
    # consumer, so it must not give the same identifier.
    assert len({provider_x, aggregate_x, consumer_x}) == 3
    assert provider_x != first.provider("y").uuid
    assert all(canonical(u) for u in (provider_x, aggregate_x, consumer_x))


def test_explicit_uuids_are_normalised_like_placement_does():
    # Placement accepts UUIDs without dashes / in upper case and returns them
    # dashed in lower case (workbench.ids.normalise_uuid).
    s = parsed(
        """
        providers:
          - {name: cn1, uuid: 6F0F4E2A1B2C4D3E8F9A0B1C2D3E4F50, inventories: {VCPU: 1}}
        consumers:
          - {uuid: 0A2B4C6D-8E0F-4A1B-9C3D-5E7F90A1B2C3, project: p, user: u, allocations: {cn1: {VCPU: 1}}}
        """
    )
    assert s.provider("cn1").uuid == "6f0f4e2a-1b2c-4d3e-8f9a-0b1c2d3e4f50"
    assert s.consumers[0].uuid == "0a2b4c6d-8e0f-4a1b-9c3d-5e7f90a1b2c3"


def test_children_get_parent_uuid_and_come_after_their_parent():
    s = parsed(
        """
        providers:
          - name: cn1
            children:
              - name: numa0
                children:
                  - name: pf0
              - name: numa1
          - name: cn2
        """
    )
    by_name = {p.name: p for p in s.providers}
    assert by_name["cn1"].parent_uuid is None
    assert by_name["cn2"].parent_uuid is None
    assert by_name["numa0"].parent_uuid == by_name["cn1"].uuid
    assert by_name["numa1"].parent_uuid == by_name["cn1"].uuid
    assert by_name["pf0"].parent_uuid == by_name["numa0"].uuid
    # "flattened parent-first": every parent is listed before its children.
    position = {p.uuid: i for i, p in enumerate(s.providers)}
    for p in s.providers:
        if p.parent_uuid:
            assert position[p.parent_uuid] < position[p.uuid]


def test_aggregates_by_name_or_uuid():
    agg_uuid = "1f5b2d6e-7a8c-4b9d-8e0f-a1b2c3d4e5f6"
    s = parsed(
        f"""
        providers:
          - {{name: cn1, aggregates: [rack1, "{agg_uuid.upper()}"]}}
          - {{name: ss, aggregates: [rack1]}}
        """
    )
    (named,) = s.provider("ss").aggregates
    # The same name means the same aggregate wherever it is used ...
    assert named in s.provider("cn1").aggregates
    assert canonical(named) and named != agg_uuid
    # ... and its name is kept for display; a UUID is used as it is.
    assert s.aggregate_names == {named: "rack1"}
    assert sorted(s.provider("cn1").aggregates) == sorted([named, agg_uuid])


def test_allocations_name_providers_by_name_or_uuid():
    s = parsed(
        """
        providers:
          - {name: cn1, inventories: {VCPU: 4}}
          - {name: ss, uuid: 2c1b7a30-3b1f-4c55-9a8e-6d0f8e7c6b5a, inventories: {DISK_GB: 100}}
        consumers:
          - name: vm1
            project: demo
            user: alice
            allocations:
              cn1: {VCPU: 2}
              2C1B7A30-3B1F-4C55-9A8E-6D0F8E7C6B5A: {DISK_GB: 10}
        """
    )
    (vm1,) = s.consumers
    assert vm1.allocations == {
        s.provider("cn1").uuid: {"VCPU": 2},
        "2c1b7a30-3b1f-4c55-9a8e-6d0f8e7c6b5a": {"DISK_GB": 10},
    }
    # Placement 1.38: consumer_type defaults to INSTANCE.
    assert (vm1.project, vm1.user, vm1.consumer_type) == ("demo", "alice", "INSTANCE")


def test_allocations_may_fill_capacity_exactly():
    # capacity = int((4 - 0) * 2.0) = 8; 5 + 3 = 8 is not beyond it.
    s = parsed(
        """
        providers:
          - {name: cn1, inventories: {VCPU: {total: 4, allocation_ratio: 2.0}}}
        consumers:
          - {name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 5}}}
          - {name: vm2, project: p, user: u, allocations: {cn1: {VCPU: 3}}}
        """
    )
    assert [c.allocations for c in s.consumers] == [
        {s.provider("cn1").uuid: {"VCPU": 5}},
        {s.provider("cn1").uuid: {"VCPU": 3}},
    ]


def test_amounts_on_step_size_and_within_min_max_are_accepted():
    s = parsed(
        """
        providers:
          - {name: cn1, inventories: {MEMORY_MB: {total: 4096, min_unit: 256, max_unit: 2048, step_size: 256}}}
        consumers:
          - {name: vm1, project: p, user: u, allocations: {cn1: {MEMORY_MB: 256}}}
          - {name: vm2, project: p, user: u, allocations: {cn1: {MEMORY_MB: 2048}}}
        """
    )
    assert len(s.consumers) == 2


def test_custom_classes_and_traits_are_collected_standard_ones_are_not():
    s = parsed(
        """
        resource_classes: [CUSTOM_DECLARED_ONLY]
        providers:
          - name: cn1
            traits: [HW_NUMA_ROOT, CUSTOM_PHYSNET_PUBLIC, CUSTOM_PHYSNET_PUBLIC]
            inventories: {VCPU: 4, CUSTOM_BAREMETAL_GOLD: 1}
        """
    )
    assert s.resource_classes == ["CUSTOM_BAREMETAL_GOLD", "CUSTOM_DECLARED_ONLY"]
    assert s.traits == ["CUSTOM_PHYSNET_PUBLIC"]
    # A provider's traits are a set.
    assert s.provider("cn1").traits == ["CUSTOM_PHYSNET_PUBLIC", "HW_NUMA_ROOT"]


def test_quotas_are_parsed():
    s = parsed(
        """
        quotas:
          - project: demo
            limits: {VCPU: 40, MEMORY_MB: 102400}
          - project: demo
            user: alice
            limits: {VCPU: 8}
        """
    )
    assert [(q.project, q.user, q.consumer_type, q.limits) for q in s.quotas] == [
        ("demo", None, None, {"VCPU": 40, "MEMORY_MB": 102400}),
        ("demo", "alice", None, {"VCPU": 8}),
    ]


def test_an_explicit_empty_scenario_is_an_empty_cloud_named_after_the_file(tmp_path):
    path = tmp_path / "nothing.yaml"
    path.write_text("providers: []\n")
    s = load_file(path)
    assert (s.name, s.providers, s.consumers, s.quotas) == ("nothing", [], [], [])


@pytest.mark.parametrize("text", ["", "# nothing here\n", "---\n"], ids=["empty", "comments only", "bare ---"])
def test_a_file_with_no_scenario_is_refused(tmp_path, text):
    # Issue 16: loaded with --reset, such a file used to empty the database silently.
    path = tmp_path / "nothing.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert "holds no scenario" in caught.value.reason and "providers: []" in caught.value.reason


# -- bad documents ------------------------------------------------------------------

CN1 = """
providers:
  - name: cn1
    inventories:
      VCPU: {total: 4, allocation_ratio: 2.0}
      MEMORY_MB: {total: 4096, min_unit: 256, max_unit: 1024, step_size: 256}
"""  # VCPU capacity int(4 * 2.0) = 8


def bad(name, text, path, *words):
    return pytest.param(textwrap.dedent(text), path, words, id=name)


BAD = [
    # -- shape -------------------------------------------------------------------
    bad("document is a list", "- name: cn1", "", "expected a mapping"),
    bad("unknown top-level key", "providers: []\nprovider: []", "provider", "unknown key"),
    bad("unknown provider key", "providers: [{name: cn1, colour: blue}]", "providers[0].colour", "unknown key"),
    bad(
        "unknown inventory field",
        "providers: [{name: cn1, inventories: {VCPU: {total: 4, ratio: 16.0}}}]",
        "providers[0].inventories.VCPU.ratio",
        "unknown key",
    ),
    bad("providers not a list", "providers: {name: cn1}", "providers", "expected a list"),
    bad("traits not a list", "providers: [{name: cn1, traits: HW_NUMA_ROOT}]", "providers[0].traits", "expected a list"),
    bad("provider without name", "providers: [{uuid: 6f0f4e2a-1b2c-4d3e-8f9a-0b1c2d3e4f50}]", "providers[0]",
        "missing required key 'name'"),
    bad("name not a string", "providers: [{name: 42}]", "providers[0].name", "expected a non-empty string"),
    bad("malformed uuid", "providers: [{name: cn1, uuid: not-a-uuid}]", "providers[0].uuid", "expected a UUID"),
    # -- inventory types and ranges: Placement's inventory schema says total is
    # an integer >= 1, reserved >= 0, min_unit/max_unit/step_size >= 1, all
    # <= 2147483647; allocation_ratio is a number -------------------------------
    bad("total not a number", "providers: [{name: cn1, inventories: {VCPU: {total: four}}}]",
        "providers[0].inventories.VCPU.total", "expected an integer"),
    # The shorthand means total, so a bad shorthand is a bad total.
    bad("shorthand not a number", "providers: [{name: cn1, inventories: {MEMORY_MB: lots}}]",
        "providers[0].inventories.MEMORY_MB.total", "expected an integer"),
    bad("total is a float", "providers: [{name: cn1, inventories: {VCPU: 4.5}}]",
        "providers[0].inventories.VCPU.total", "expected an integer"),
    # JSON-schema "integer" does not accept true/false.
    bad("total is a boolean", "providers: [{name: cn1, inventories: {VCPU: true}}]",
        "providers[0].inventories.VCPU.total", "expected an integer"),
    bad("total missing", "providers: [{name: cn1, inventories: {VCPU: {reserved: 1}}}]",
        "providers[0].inventories.VCPU", "missing required key 'total'"),
    bad("total zero", "providers: [{name: cn1, inventories: {VCPU: 0}}]",
        "providers[0].inventories.VCPU.total", "between 1"),
    bad("total beyond MAX_INT", "providers: [{name: cn1, inventories: {VCPU: 2147483648}}]",
        "providers[0].inventories.VCPU.total", "2147483647"),
    bad("negative reserved", "providers: [{name: cn1, inventories: {VCPU: {total: 4, reserved: -1}}}]",
        "providers[0].inventories.VCPU.reserved", "between 0"),
    bad("step_size zero", "providers: [{name: cn1, inventories: {VCPU: {total: 4, step_size: 0}}}]",
        "providers[0].inventories.VCPU.step_size", "between 1"),
    bad("allocation_ratio not a number",
        "providers: [{name: cn1, inventories: {VCPU: {total: 4, allocation_ratio: high}}}]",
        "providers[0].inventories.VCPU.allocation_ratio", "number"),
    bad("reserved greater than total", "providers: [{name: cn1, inventories: {VCPU: {total: 4, reserved: 5}}}]",
        "providers[0].inventories.VCPU.reserved", "reserved (5)", "greater than total (4)"),
    bad("min_unit greater than max_unit",
        "providers: [{name: cn1, inventories: {VCPU: {total: 4, min_unit: 4, max_unit: 2}}}]",
        "providers[0].inventories.VCPU.min_unit", "min_unit (4)", "max_unit (2)"),
    # -- names ---------------------------------------------------------------------
    bad("duplicate name", "providers: [{name: cn1}, {name: cn1}]", "providers[1].name", "duplicate", "cn1"),
    bad("duplicate name of a child", "providers: [{name: cn1, children: [{name: cn1}]}]",
        "providers[0].children[0].name", "duplicate", "cn1"),
    # The same UUID spelt differently is still the same UUID.
    bad("duplicate uuid",
        """
        providers:
          - {name: a, uuid: 6f0f4e2a-1b2c-4d3e-8f9a-0b1c2d3e4f50}
          - {name: b, uuid: 6F0F4E2A1B2C4D3E8F9A0B1C2D3E4F50}
        """,
        "providers[1].uuid", "duplicate", "6f0f4e2a-1b2c-4d3e-8f9a-0b1c2d3e4f50"),
    bad("unknown trait", "providers: [{name: cn1, traits: [HW_NUMA_ROOT, FAST_NIC]}]",
        "providers[0].traits[1]", "unknown trait", "FAST_NIC"),
    # Custom names must match ^CUSTOM_[A-Z0-9_]+$ (Placement's schema).
    bad("lower-case custom trait", "providers: [{name: cn1, traits: [CUSTOM_fast]}]",
        "providers[0].traits[0]", "unknown trait"),
    bad("unknown resource class", "providers: [{name: cn1, inventories: {GPU_MEMORY_MB: 16}}]",
        "providers[0].inventories.GPU_MEMORY_MB", "unknown resource class"),
    bad("declared resource class not custom", "resource_classes: [GOLD]", "resource_classes[0]",
        "not a custom name"),
    # -- consumers -----------------------------------------------------------------
    bad("consumer without project", CN1 + "consumers: [{name: vm1, user: u}]", "consumers[0]",
        "missing required key 'project'"),
    bad("consumer without name or uuid", CN1 + "consumers: [{project: p, user: u}]", "consumers[0]",
        "'uuid' or a 'name'"),
    # Placement 1.38: consumer_type matches ^[A-Z0-9_]+$.
    bad("lower-case consumer type", CN1 + "consumers: [{name: vm1, project: p, user: u, consumer_type: instance}]",
        "consumers[0].consumer_type", "[A-Z0-9_]+"),
    bad("allocation to unknown provider", CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn9: {VCPU: 1}}}]",
        "consumers[0].allocations.cn9", "unknown provider", "cn9"),
    bad("allocation of a class the provider lacks",
        CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {DISK_GB: 10}}}]",
        "consumers[0].allocations.cn1.DISK_GB", "no DISK_GB inventory"),
    # Placement's allocation schema: amounts are integers >= 1.
    bad("amount zero", CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 0}}}]",
        "consumers[0].allocations.cn1.VCPU", "between 1"),
    # Each alone fits capacity 8; together they need 5 + 4 = 9.
    bad("two consumers beyond capacity",
        CN1
        + "consumers:\n"
        + "  - {name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 5}}}\n"
        + "  - {name: vm2, project: p, user: u, allocations: {cn1: {VCPU: 4}}}\n",
        "consumers[1].allocations.cn1.VCPU", "9", "capacity of 8"),
    # int((3 - 0) * 1.5) = 4: the 0.5 is truncated, so 5 does not fit.
    bad("capacity truncates",
        """
        providers: [{name: cn1, inventories: {VCPU: {total: 3, allocation_ratio: 1.5}}}]
        consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 5}}}]
        """,
        "consumers[0].allocations.cn1.VCPU", "capacity of 4"),
    # reserved == total leaves capacity 0: a parked node takes no allocation.
    bad("allocation on a parked node",
        """
        providers: [{name: bm1, inventories: {CUSTOM_BAREMETAL_GOLD: {total: 1, reserved: 1}}}]
        consumers: [{name: vm1, project: p, user: u, allocations: {bm1: {CUSTOM_BAREMETAL_GOLD: 1}}}]
        """,
        "consumers[0].allocations.bm1.CUSTOM_BAREMETAL_GOLD", "capacity of 0"),
    # Placement checks every amount against min_unit, max_unit and step_size.
    bad("amount off step_size", CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {MEMORY_MB: 300}}}]",
        "consumers[0].allocations.cn1.MEMORY_MB", "300", "step_size 256"),
    bad("amount below min_unit", CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {MEMORY_MB: 128}}}]",
        "consumers[0].allocations.cn1.MEMORY_MB", "min_unit 256"),
    # 1280 is on the step (5 x 256) and under capacity, but above max_unit.
    bad("amount above max_unit", CN1 + "consumers: [{name: vm1, project: p, user: u, allocations: {cn1: {MEMORY_MB: 1280}}}]",
        "consumers[0].allocations.cn1.MEMORY_MB", "max_unit 1024"),
    # -- quotas --------------------------------------------------------------------
    bad("quota without limits", "quotas: [{project: demo}]", "quotas[0]", "missing required key 'limits'"),
    bad("quota on an unknown class", "quotas: [{project: demo, limits: {CORES: 4}}]", "quotas[0].limits.CORES",
        "unknown resource class"),
    bad("negative quota", "quotas: [{project: demo, limits: {VCPU: -1}}]", "quotas[0].limits.VCPU", "between 0"),
    # -- Placement's string lengths (its JSON schemas): a provider name up to 200
    # characters; traits, classes, project and user ids up to 255. Neo4j's
    # indexes refuse values over about 8 KB, so these failed only at write time.
    bad("provider name of 201 characters", f"providers: [{{name: {'n' * 201}}}]", "providers[0].name",
        "201 characters", "at most 200"),
    bad("trait of 256 characters", f"providers: [{{name: cn1, traits: [CUSTOM_{'T' * 249}]}}]",
        "providers[0].traits[0]", "256 characters", "at most 255"),
    # (A key over 1,024 characters must be explicit, "? key", in YAML.)
    bad("class of 8,000 characters", f"providers: [{{name: cn1, inventories: {{? CUSTOM_{'C' * 7993} : 1}}}}]",
        f"providers[0].inventories.CUSTOM_{'C' * 7993}", "8000 characters", "at most 255"),
    bad("project of 256 characters", CN1 + f"consumers: [{{name: vm, project: {'p' * 256}, user: u, "
        "allocations: {cn1: {VCPU: 1}}}]", "consumers[0].project", "at most 255"),
    bad("quota user of 300 characters", f"quotas: [{{project: demo, user: {'u' * 300}, limits: {{VCPU: 1}}}}]",
        "quotas[0].user", "at most 255"),
]


@pytest.mark.parametrize("text, path, words", BAD)
def test_bad_document_is_refused_with_file_path_and_reason(text, path, words):
    with pytest.raises(ScenarioError) as caught:
        parse(yaml.safe_load(text), source=SOURCE)
    error = caught.value
    assert (error.source, error.path) == (SOURCE, path)
    for word in words:
        assert word in error.reason
    message = str(error)
    assert message.startswith(SOURCE) and path in message and error.reason in message


def test_names_at_placements_limits_are_accepted():
    s = parse(
        {
            "providers": [{"name": "n" * 200, "traits": ["CUSTOM_" + "T" * 248], "inventories": {"VCPU": 1}}],
            "consumers": [
                {"name": "vm", "project": "p" * 255, "user": "u" * 255, "allocations": {"n" * 200: {"VCPU": 1}}}
            ],
        }
    )
    assert len(s.providers[0].name) == 200 and len(s.consumers[0].project) == 255


def test_duplicate_consumer_is_refused():
    text = CN1 + textwrap.dedent(
        """
        consumers:
          - {name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 1}}}
          - {name: vm1, project: p, user: u, allocations: {cn1: {VCPU: 1}}}
        """
    )
    with pytest.raises(ScenarioError) as caught:
        parse(yaml.safe_load(text), source=SOURCE)
    assert caught.value.path == "consumers[1].name"
    assert "duplicate" in caught.value.reason


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "cloud.yaml"
    path.write_text("providers:\n  - name: cn1\n    inventories:\n      VCPU: {total: 4, reserved: 5}\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert caught.value.path == "providers[0].inventories.VCPU.reserved"
    assert str(caught.value).startswith(f"{path}: providers[0].inventories.VCPU.reserved: ")


def test_invalid_yaml_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    # A second ': ' inside a plain scalar: YAML forbids a mapping value here.
    # The offending ':' is on line 3 (1-based), at column 14 (1-based:
    # two spaces, "- ", "name: ", "cn1" take columns 1-13).
    path.write_text("name: broken\nproviders:\n  - name: cn1: oops\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert caught.value.path == "line 3, column 14"
    assert "not valid YAML" in caught.value.reason


def test_a_file_that_is_not_utf8_is_refused_with_the_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("providers: [{name: café}]\n".encode("latin-1"))  # é is one byte, 0xe9, at offset 22
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert caught.value.path == "byte 22" and "not UTF-8" in caught.value.reason


# A "billion laughs": nine levels of nine aliases, 459 bytes that PyYAML would
# build into shared lists and the validator walk as 9**9 (387 million) strings.
ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{x}: &{x} [{','.join(['*' + p] * 9)}]" for p, x in zip("abcdefgh", "bcdefghi")),
    ]
) + "\n"


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB.encode()) < 500
    started = time.perf_counter()
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert time.perf_counter() - started < 2
    assert "aliases expand the document" in caught.value.reason


def test_aliases_that_repeat_a_block_a_few_times_are_fine(tmp_path):
    # The ordinary use: one inventory block shared by many hosts.
    path = tmp_path / "anchors.yaml"
    path.write_text(f"providers:\n  - {{name: cn0, inventories: &inv {{VCPU: 8, MEMORY_MB: 4096}}}}\n"
                    + "\n".join(f"  - {{name: cn{i}, inventories: *inv}}" for i in range(1, 50)) + "\n")
    s = load_file(path)
    assert len(s.providers) == 50 and all(p.inventories["VCPU"].total == 8 for p in s.providers)


def test_a_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("providers: &p [{name: cn1, children: *p}]\n")
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert "contains it" in caught.value.reason


@pytest.mark.parametrize(
    "text, where, key",
    [
        ("providers: []\nproviders: [{name: cn1}]\n", "line 2, column 1", "providers"),
        ("providers:\n  - name: cn1\n    inventories: {VCPU: 4, VCPU: 8}\n", "line 3, column 28", "VCPU"),
    ],
    ids=["top level", "inventory class"],
)
def test_a_duplicate_key_is_refused_not_last_one_wins(tmp_path, text, where, key):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert caught.value.path == where and f"duplicate key '{key}'" in caught.value.reason


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    assert (caught.value.source, caught.value.path) == (str(path), "")
    assert "cannot read file" in caught.value.reason
    assert str(caught.value).startswith(str(path))


# -- the demo cloud is what the notebooks promise -------------------------------------------


def test_demo_scenario_has_the_promised_parts():
    s = load_file(DEMO)
    assert s.description
    by_uuid = {p.uuid: p for p in s.providers}
    children = {p.uuid: [c for c in s.providers if c.parent_uuid == p.uuid] for p in s.providers}
    roots = [p for p in s.providers if p.parent_uuid is None]

    # (a) compute nodes: roots with two HW_NUMA_ROOT children holding VCPU and
    # MEMORY_MB, each NUMA node parenting an SR-IOV PF on a physnet.
    numa_hosts = [r for r in roots if any("HW_NUMA_ROOT" in c.traits for c in children[r.uuid])]
    assert len(numa_hosts) == 2
    for host in numa_hosts:
        numa = [c for c in children[host.uuid] if "HW_NUMA_ROOT" in c.traits]
        assert len(numa) == 2
        for node in numa:
            assert {"VCPU", "MEMORY_MB"} <= set(node.inventories)
            assert node.inventories["VCPU"].allocation_ratio == 16.0
            assert node.inventories["MEMORY_MB"].allocation_ratio == 1.5
            (pf,) = children[node.uuid]
            assert "SRIOV_NET_VF" in pf.inventories
            assert any(t.startswith("CUSTOM_PHYSNET_") for t in pf.traits)

    # (b) a sharing storage provider in an aggregate with each compute node.
    sharing = [p for p in s.providers if "MISC_SHARES_VIA_AGGREGATE" in p.traits]
    assert len(sharing) == 1 and "DISK_GB" in sharing[0].inventories
    for host in numa_hosts:
        assert set(host.aggregates) & set(sharing[0].aggregates)

    # (c) two GPU hosts, each with (at least) two pGPU children offering VGPU.
    gpu_hosts = [r for r in roots if sum("VGPU" in c.inventories for c in children[r.uuid]) >= 2]
    assert len(gpu_hosts) == 2

    # (d) three Ironic nodes: roots with exactly one unit of one gold/silver class, one parked.
    baremetal = [r for r in roots if set(r.inventories) & {"CUSTOM_BAREMETAL_GOLD", "CUSTOM_BAREMETAL_SILVER"}]
    assert len(baremetal) == 3
    for node in baremetal:
        (inv,) = node.inventories.values()
        assert (inv.total, inv.max_unit) == (1, 1) and not children[node.uuid]
    assert sum(inv.reserved == inv.total for node in baremetal for inv in node.inventories.values()) == 1

    # (e) several projects and users with running consumers (the parser
    # already proved the allocations fit), and quotas.
    assert len({c.project for c in s.consumers}) >= 2
    assert len({(c.project, c.user) for c in s.consumers}) >= 3
    assert all(c.allocations for c in s.consumers)
    assert all(rp in by_uuid for c in s.consumers for rp in c.allocations)
    assert s.quotas

    # The demo starts within its own quotas (they will be enforced later).
    for quota in s.quotas:
        holders = [
            c for c in s.consumers
            if c.project == quota.project
            and quota.user in (None, c.user)
            and quota.consumer_type in (None, c.consumer_type)
        ]  # fmt: skip
        for rc, limit in quota.limits.items():
            used = sum(res.get(rc, 0) for c in holders for res in c.allocations.values())
            assert used <= limit, (quota, rc, used)
