"""The provider topologies of Placement's gabbi fixtures, built in the graph.

Placement's functional fixtures (placement/tests/functional/fixtures/gabbits.py
in openstack-placement 16.0.0, the specification) build their clouds through
Placement's object layer and publish what the YAML needs as environment
variables. For each of the eight topological fixtures this module builds the
same cloud in the graph and sets the same variables, with the same names and
meanings (the values are this workbench's UUIDs).

Contract with ``workbench/conformance/fixtures.py``: ``BUILDERS`` maps the
upstream fixture class name to a ``build(graph) -> None`` function. Call it
after the APIFixture part has set its variables (AllocationFixture reads
RP_UUID, RP_NAME, PROJECT_ID and USER_ID) and on an empty graph. Every build
loads one scenario (the loader's all-or-nothing write), then, in one more
write, sets what a scenario file cannot say (below). UUIDs are derived from
names as in the scenario files (AllocationFixture's provider takes RP_UUID);
upstream's are random.

The clouds are the scenario files in ``data/fixtures/`` (checked provider by
provider against the running fixtures, see data/fixtures/README.md), with two
things a scenario cannot say put right afterwards, because the gabbi files
assert them:

* **Generations.** Upstream, each ``add_inventory``, each ``set_traits`` and
  each ``set_allocation`` touching a provider bumps its generation once
  (aggregates set by ``create_provider`` do not: it passes
  ``increment_generation=False``); reshaper.yaml, for one, sends generation 5
  for AllocationFixture's provider. A consumer is created at 0 and bumped by
  its one ``set_allocation``: 1, as the loader writes it.
* **Consumer types.** The fixtures' consumers are written with no consumer
  type, which reads back as ``unknown`` from 1.38 on (consumer-types-1.38.yaml
  counts them under ``unknown``); the scenario format needs a type, so it is
  removed after loading.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

import yaml

from workbench.graphdb.db import Graph
from workbench.engine import loader
from workbench.ids import derive_uuid
from workbench.scenario import Scenario, parse

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"

SET_FIXTURE_STATE = """
// What the fixture's object-layer writes leave and a scenario cannot say:
// each provider's generation, and consumers without a consumer type.
UNWIND $generations AS g
MATCH (rp:Provider {uuid: g.uuid})
SET rp.generation = g.generation
WITH count(*) AS done
UNWIND $consumers AS consumer_uuid
MATCH (c:Consumer {uuid: consumer_uuid})
REMOVE c.consumer_type
"""


def _document(name: str) -> dict:
    return yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())


def _generations(scenario: Scenario) -> list[dict]:
    """One bump per inventory, one for the traits, one per consumer allocating on it."""
    allocating: dict[str, int] = {}
    for consumer in scenario.consumers:
        for rp in consumer.allocations:
            allocating[rp] = allocating.get(rp, 0) + 1
    return [
        {"uuid": p.uuid, "generation": len(p.inventories) + bool(p.traits) + allocating.get(p.uuid, 0)}
        for p in scenario.providers
    ]


def _load(graph: Graph, scenario: Scenario) -> Scenario:
    loader.load(graph, scenario)
    graph.run(
        SET_FIXTURE_STATE,
        generations=_generations(scenario),
        consumers=[c.uuid for c in scenario.consumers],
    )
    return scenario


def _export(scenario: Scenario, providers: dict[str, str], aggregates: dict[str, str] | None = None) -> None:
    """Set each variable to the UUID of the provider (or aggregate) it names."""
    by_name = {p.name: p.uuid for p in scenario.providers}
    for variable, name in providers.items():
        os.environ[variable] = by_name[name]
    # The scenario derives a named aggregate's UUID the same way, and an
    # aggregate no provider is in yet (the gabbi file puts them there) needs one too.
    for variable, name in (aggregates or {}).items():
        os.environ[variable] = derive_uuid("aggregate", name)


def _uuid_variables(*names: str) -> dict[str, str]:
    """Upstream's most common naming: provider ``numa1_1`` is ``NUMA1_1_UUID``."""
    return {f"{name.upper()}_UUID": name for name in names}


def _scenario(name: str, document: dict | None = None) -> Scenario:
    return parse(document or _document(name), source=f"data/fixtures/{name}.yaml", default_name=name)


# -- the fixtures -------------------------------------------------------------


def build_allocation_fixture(graph: Graph) -> None:
    """One provider (RP_NAME / RP_UUID from the APIFixture), three consumers of
    one project: CONSUMER_0 (DISK_GB 1000) and CONSUMER_ID (VCPU 6) of USER_ID,
    ALT_CONSUMER_ID (VCPU 1, DISK_GB 20) of ALT_USER_ID."""
    os.environ["ALT_USER_ID"] = str(uuid.uuid4())
    document = _document("allocation")
    (provider,) = document["providers"]
    provider.update(name=os.environ["RP_NAME"], uuid=os.environ["RP_UUID"])
    owners = {"project": os.environ["PROJECT_ID"], "user": os.environ["USER_ID"], "alt_user": os.environ["ALT_USER_ID"]}
    for consumer in document["consumers"]:
        consumer["project"], consumer["user"] = owners[consumer["project"]], owners[consumer["user"]]
        consumer["allocations"] = {os.environ["RP_UUID"]: consumer["allocations"]["rp"]}
    scenario = _load(graph, _scenario("allocation", document))
    by_name = {c["name"]: consumer.uuid for c, consumer in zip(document["consumers"], scenario.consumers)}
    os.environ["CONSUMER_0"] = by_name["consumer1"]
    os.environ["CONSUMER_ID"] = by_name["consumer2"]
    os.environ["ALT_CONSUMER_ID"] = by_name["alt_consumer"]
    # A provider the fixture does not create, for the YAML to create.
    os.environ["ALT_RP_UUID"] = str(uuid.uuid4())
    os.environ["ALT_RP_NAME"] = str(uuid.uuid4())


def build_shared_storage_fixture(graph: Graph) -> None:
    """cn1 and cn2 (two NUMA cells with a PF each), sharing stores ss and ss2, one aggregate."""
    scenario = _load(graph, _scenario("shared_storage"))
    names = ("cn1", "cn2", "ss", "ss2", "numa1_1", "numa1_2", "numa2_1", "numa2_2", "pf1_1", "pf1_2", "pf2_1", "pf2_2")
    _export(scenario, _uuid_variables(*names), {"AGG_UUID": "agg"})


def build_non_shared_storage_fixture(graph: Graph) -> None:
    """cn1..cn3 with local disk, in no aggregate yet; AGGA/B/C_UUID for the YAML to use."""
    scenario = _load(graph, _scenario("non_shared_storage"))
    _export(
        scenario,
        _uuid_variables("cn1", "cn2", "cn3"),
        {"AGGA_UUID": "aggA", "AGGB_UUID": "aggB", "AGGC_UUID": "aggC"},
    )


def build_numa_aggregate_fixture(graph: Graph) -> None:
    """cn1, cn2 without inventory, four NUMA cells, ss1 (aggA) and ss2 (aggC, on numa1_1)."""
    scenario = _load(graph, _scenario("numa_aggregate"))
    names = ("cn1", "cn2", "ss1", "ss2", "numa1_1", "numa1_2", "numa2_1", "numa2_2")
    _export(scenario, _uuid_variables(*names), {"AGGA_UUID": "aggA", "AGGB_UUID": "aggB", "AGGC_UUID": "aggC"})


NUMA_NETWORK_PROVIDERS = (
    "ss1", "cn1", "numa0", "numa1", "fpga0", "pgpu0", "fpga1_0", "fpga1_1", "sriov_agent", "esn1", "esn2",
    "ovs_agent", "br_int", "cn2", "nic1", "nic2", "nic3", "pf1_1", "pf1_2", "pf2_1", "pf2_2", "pf2_3", "pf2_4",
    "pf3_1",
)  # fmt: skip


def build_numa_network_fixture(graph: Graph) -> None:
    """cn1 (NUMA cells with devices, SR-IOV and OVS agents), cn2 (NICs and PFs), ss1; aggA."""
    scenario = _load(graph, _scenario("numa_network"))
    _export(scenario, _uuid_variables(*NUMA_NETWORK_PROVIDERS), {"AGGA_UUID": "aggA"})


def build_deep_numa_network_fixture(graph: Graph) -> None:
    """NUMANetworkFixture with cn1 under gp1 -> p1 and cn2 under gp1 -> p2 (no variables for those)."""
    scenario = _load(graph, _scenario("deep_numa_network"))
    _export(scenario, _uuid_variables(*NUMA_NETWORK_PROVIDERS), {"AGGA_UUID": "aggA"})


def build_granular_fixture(graph: Graph) -> None:
    """cn_left, cn_middle, cn_right, shr_disk_1, shr_disk_2, shr_net; aggregates aggA, aggB, aggC."""
    scenario = _load(graph, _scenario("granular"))
    names = ("cn_left", "cn_middle", "cn_right", "shr_disk_1", "shr_disk_2", "shr_net")
    _export(scenario, {name.upper(): name for name in names}, {"AGGA": "aggA", "AGGB": "aggB", "AGGC": "aggC"})


def build_neutron_qos_multi_segment_fixture(graph: Graph) -> None:
    """compute0..compute3 with OVS and SR-IOV agent subtrees; keys like ``compute1:br_ex``."""
    scenario = _load(graph, _scenario("neutron_qos_multi_segment"))
    variables = {}
    for n in range(4):
        compute = f"compute{n}"
        variables |= {
            compute: compute,
            f"{compute}:ovs_agent": f"{compute}:Open vSwitch agent",
            f"{compute}:br_ex": f"{compute}:Open vSwitch agent:br-ex",
            f"{compute}:sriov_agent": f"{compute}:NIC Switch agent",
            f"{compute}:pf0": f"{compute}:NIC Switch agent:enp129s0f0",
        }
    variables |= {
        "compute3:br_ex2": "compute3:Open vSwitch agent:br-ex2",
        "compute3:pf1": "compute3:NIC Switch agent:enp129s0f1",
        # Upstream sets this one to compute2's agent (a slip in the fixture);
        # the same meaning is kept so that the YAML sees what it sees upstream.
        "compute3:sriov_agent": "compute2:NIC Switch agent",
    }
    _export(scenario, variables)


BUILDERS: dict[str, Callable[[Graph], None]] = {
    "AllocationFixture": build_allocation_fixture,
    "SharedStorageFixture": build_shared_storage_fixture,
    "NonSharedStorageFixture": build_non_shared_storage_fixture,
    "NUMAAggregateFixture": build_numa_aggregate_fixture,
    "NUMANetworkFixture": build_numa_network_fixture,
    "DeepNUMANetworkFixture": build_deep_numa_network_fixture,
    "GranularFixture": build_granular_fixture,
    "NeutronQoSMultiSegmentFixture": build_neutron_qos_multi_segment_fixture,
}
