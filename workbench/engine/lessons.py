"""The seed's own demo: one Cypher query a reviewer can read in ten minutes.

The argument behind this workbench was made with one handwritten graph pattern
for "CPU and memory from the same NUMA cell, and a VF from a PF under that
cell", the request that took Placement's SQL years (``same_subtree``, 1.36)::

    resources_CPU=VCPU:{vcpu},MEMORY_MB:{memory_mb}&required_CPU=HW_NUMA_ROOT
    &resources_NET=SRIOV_NET_VF:{vfs}&group_policy=none&same_subtree=_CPU,_NET

:data:`NUMA_AFFINITY` is that pattern. Notebook 02 runs it and checks that its
answers are exactly the engine's and Placement's on the demo cloud. It answers
this one request shape only; the general engine (:mod:`workbench.engine.candidates`)
answers any request (see notebook 02 for what it adds).

:data:`NUMA_AFFINITY_CANDIDATES` goes further, for the experiment of issue 17
(:mod:`workbench.comparison.experiment`): the same request with disk from the
host and ``group_policy=isolate`` (or ``none``), answered by one declarative
pattern that returns the allocation requests themselves, with no Python
combining step. Its scope is that request on trees without sharing providers
(disk from a sharing pool is not looked for).
"""

from __future__ import annotations

NUMA_AFFINITY = """
// A NUMA cell (a provider with the trait HW_NUMA_ROOT) ...
MATCH (cell:Provider)-[:HAS_TRAIT]->(:Trait {name: 'HW_NUMA_ROOT'})
// ... giving the CPUs and the memory ...
MATCH (cell)-[:HAS_INVENTORY]->(cpu:Inventory {resource_class: 'VCPU'}),
      (cell)-[:HAS_INVENTORY]->(memory:Inventory {resource_class: 'MEMORY_MB'})
// ... and a PF under it (or the cell itself: *0..) giving the VFs.
MATCH (cell)-[:PARENT_OF*0..]->(pf:Provider)-[:HAS_INVENTORY]->(vf:Inventory {resource_class: 'SRIOV_NET_VF'})
// Each of the three inventories must take its amount: one row per (inventory, amount).
UNWIND [[cpu, $vcpu], [memory, $memory_mb], [vf, $vfs]] AS ask
WITH cell, pf, ask[0] AS inv, ask[1] AS amount
CALL (inv) {  // what the consumers already hold of it
  OPTIONAL MATCH (inv)<-[held:CONSUMES]-(:Consumer)
  RETURN coalesce(sum(held.used), 0) AS used
}
// It fits: within min_unit..max_unit, a multiple of step_size, and room left in
// the capacity, (total - reserved) * allocation_ratio.
WITH cell, pf, inv.min_unit <= amount <= inv.max_unit AND amount % inv.step_size = 0
               AND used + amount <= (inv.total - inv.reserved) * inv.allocation_ratio AS fits
WITH cell, pf, collect(fits) AS checks
WHERE all(ok IN checks WHERE ok)
RETURN cell.name AS cell, pf.name AS pf
ORDER BY cell, pf
"""

NUMA_AFFINITY_REQUEST = (
    "resources_CPU=VCPU:{vcpu},MEMORY_MB:{memory_mb}&required_CPU=HW_NUMA_ROOT"
    "&resources_NET=SRIOV_NET_VF:{vfs}&group_policy=none&same_subtree=_CPU,_NET"
)

NUMA_AFFINITY_CANDIDATES = """
// The hard case, whole: the allocation requests themselves, one row each, with
// no combining step after it. The request (NUMA_AFFINITY_CANDIDATES_REQUEST):
// CPU and memory from one NUMA cell, VFs from a provider in the same subtree,
// disk from the cell's tree; with $isolate, the two groups on different providers.
MATCH (cell:Provider)-[:HAS_TRAIT]->(:Trait {name: 'HW_NUMA_ROOT'})
MATCH (cell)-[:HAS_INVENTORY]->(cpu:Inventory {resource_class: 'VCPU'}),
      (cell)-[:HAS_INVENTORY]->(memory:Inventory {resource_class: 'MEMORY_MB'})
// same_subtree: one of the two providers is an ancestor of (or is) the other.
CALL (cell) {
  MATCH (cell)-[:PARENT_OF*0..]->(nic:Provider) RETURN nic
  UNION
  MATCH (nic:Provider)-[:PARENT_OF*1..]->(cell) RETURN nic
}
MATCH (nic)-[:HAS_INVENTORY]->(vf:Inventory {resource_class: 'SRIOV_NET_VF'})
WHERE NOT ($isolate AND nic = cell)
// The unsuffixed group may take its disk from any provider of the cell's tree.
MATCH (root:Provider)-[:PARENT_OF*0..]->(cell)
WHERE NOT EXISTS { (root)<-[:PARENT_OF]-() }
MATCH (root)-[:PARENT_OF*0..]->(host:Provider)-[:HAS_INVENTORY]->(disk:Inventory {resource_class: 'DISK_GB'})
// Each group asks for other classes, so no inventory is asked twice and each
// can be checked on its own (Placement's combined-capacity check has nothing to add).
UNWIND [[cpu, $vcpu], [memory, $memory_mb], [vf, $vfs], [disk, $disk_gb]] AS ask
WITH host, cell, nic, ask[0] AS inv, ask[1] AS amount
CALL (inv) {
  OPTIONAL MATCH (inv)<-[held:CONSUMES]-(:Consumer)
  RETURN coalesce(sum(held.used), 0) AS used
}
WITH host, cell, nic, inv.min_unit <= amount <= inv.max_unit AND amount % inv.step_size = 0
                      AND used + amount <= (inv.total - inv.reserved) * inv.allocation_ratio AS fits
WITH host, cell, nic, collect(fits) AS checks
WHERE all(ok IN checks WHERE ok)
RETURN host.uuid AS disk, cell.uuid AS cpu, nic.uuid AS net
"""

NUMA_AFFINITY_CANDIDATES_REQUEST = (
    "resources=DISK_GB:{disk_gb}&resources_CPU=VCPU:{vcpu},MEMORY_MB:{memory_mb}&required_CPU=HW_NUMA_ROOT"
    "&resources_NET=SRIOV_NET_VF:{vfs}&same_subtree=_CPU,_NET&group_policy={group_policy}"
)


def numa_affinity_allocation_requests(
    rows: list[dict], vcpu: int, memory_mb: int, vfs: int, disk_gb: int
) -> list[dict]:
    """Rows of (disk, cpu, net) providers, from :data:`NUMA_AFFINITY_CANDIDATES` or
    any store answering the same question, as Placement's allocation requests."""
    amounts = {
        "": {"DISK_GB": disk_gb}, "_CPU": {"VCPU": vcpu, "MEMORY_MB": memory_mb}, "_NET": {"SRIOV_NET_VF": vfs},
    }
    requests = []
    for row in rows:
        chosen = {"": row["disk"], "_CPU": row["cpu"], "_NET": row["net"]}
        allocations: dict[str, dict[str, int]] = {}
        for suffix, provider in chosen.items():
            allocations.setdefault(provider, {}).update(amounts[suffix])
        requests.append({
            "allocations": {rp: {"resources": resources} for rp, resources in allocations.items()},
            "mappings": {suffix: [provider] for suffix, provider in chosen.items()},
        })
    return requests
