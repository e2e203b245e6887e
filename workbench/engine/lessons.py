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
