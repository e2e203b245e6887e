"""Synthetic clouds of any size, for scale tests and the benchmark.

Shapes (one entry per compute node, "host"):

  flat    a host with VCPU, MEMORY_MB and DISK_GB of its own
  numa    a host with DISK_GB and two NUMA children (VCPU, MEMORY_MB,
          HW_NUMA_ROOT), each with an SR-IOV PF child (SRIOV_NET_VF)
  shared  hosts with VCPU and MEMORY_MB only, in aggregates of 100 hosts,
          each aggregate with one sharing DISK_GB pool
  wide    a host with VCPU and MEMORY_MB and eight single-unit GPU children

Every host gets HW_CPU_X86_AVX2; every tenth host also CUSTOM_LEGACY, so
forbidden-trait requests have something to exclude. Names and UUIDs are
derived from the host number, so a given size and shape is always the same cloud.
"""

from __future__ import annotations

from workbench.scenario import Scenario, parse

SHAPES = ("flat", "numa", "shared", "wide")
HOSTS_PER_AGGREGATE = 100


def cloud(compute_nodes: int, shape: str = "flat") -> Scenario:
    if shape not in SHAPES:
        raise ValueError(f"unknown cloud shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if compute_nodes < 1:
        raise ValueError("a cloud needs at least one compute node")
    providers = [_host(i, shape) for i in range(compute_nodes)]
    if shape == "shared":
        for agg in range((compute_nodes + HOSTS_PER_AGGREGATE - 1) // HOSTS_PER_AGGREGATE):
            providers.append(
                {
                    "name": f"pool{agg:04d}",
                    "traits": ["MISC_SHARES_VIA_AGGREGATE"],
                    "aggregates": [f"agg{agg:04d}"],
                    "inventories": {"DISK_GB": {"total": 100000, "reserved": 1000}},
                }
            )
    return parse(
        {"name": f"{shape}-{compute_nodes}", "traits": ["CUSTOM_LEGACY"], "providers": providers},
        source=f"<synthetic {shape} cloud of {compute_nodes} compute nodes>",
    )


def _host(i: int, shape: str) -> dict:
    name = f"cn{i:05d}"
    host = {
        "name": name,
        "traits": ["HW_CPU_X86_AVX2"] + (["CUSTOM_LEGACY"] if i % 10 == 0 else []),
    }
    compute = {
        "VCPU": {"total": 32, "allocation_ratio": 4.0, "max_unit": 32},
        "MEMORY_MB": {"total": 131072, "reserved": 2048, "allocation_ratio": 1.0, "min_unit": 128},
    }
    if shape == "flat":
        host["inventories"] = dict(compute, DISK_GB={"total": 2000, "reserved": 100})
    elif shape == "numa":
        host["inventories"] = {"DISK_GB": {"total": 2000, "reserved": 100}}
        host["children"] = [
            {
                "name": f"{name}_numa{n}",
                "traits": ["HW_NUMA_ROOT"],
                "inventories": {
                    "VCPU": {"total": 16, "allocation_ratio": 4.0, "max_unit": 16},
                    "MEMORY_MB": {"total": 65536, "min_unit": 128},
                },
                "children": [{"name": f"{name}_numa{n}_pf", "inventories": {"SRIOV_NET_VF": 8}}],
            }
            for n in range(2)
        ]
    elif shape == "shared":
        host["inventories"] = compute
        host["aggregates"] = [f"agg{i // HOSTS_PER_AGGREGATE:04d}"]
    else:  # wide
        host["inventories"] = compute
        host["children"] = [{"name": f"{name}_gpu{g}", "inventories": {"VGPU": 1}} for g in range(8)]
    return host
