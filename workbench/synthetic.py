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

``fill`` puts existing allocations in the cloud, as in a cloud in use: a
fraction ``fill`` of the hosts is *full* (every inventory of the host's tree,
and the host's share of its aggregate's disk pool, used to capacity by a few
instances, each within the inventories' ``max_unit``); the other hosts are
empty. A full host fits no request, so a search with ``limit`` has to skip
it. With a fraction, the full hosts are spread evenly over the host numbers,
which the UUIDs scatter; ``fill="adversarial"`` fills the
:data:`ADVERSARIAL_FILL` of the hosts that come *first in UUID order*, the
worst case for a search that pages through trees in that order.
"""

from __future__ import annotations

import math

from workbench.ids import derive_uuid
from workbench.scenario import Scenario, parse

SHAPES = ("flat", "numa", "shared", "wide")
HOSTS_PER_AGGREGATE = 100
POOL_DISK = {"total": 100000, "reserved": 1000}  # each aggregate's sharing DISK_GB pool
ADVERSARIAL = "adversarial"
ADVERSARIAL_FILL = 0.7  # the fraction of hosts (first in UUID order) an adversarial fill makes full


def cloud(compute_nodes: int, shape: str = "flat", fill: float | str = 0.0) -> Scenario:
    if shape not in SHAPES:
        raise ValueError(f"unknown cloud shape {shape!r}; choose one of {', '.join(SHAPES)}")
    if compute_nodes < 1:
        raise ValueError("a cloud needs at least one compute node")
    providers = [_host(i, shape) for i in range(compute_nodes)]
    consumers = [vm for i in full_hosts(compute_nodes, fill) for vm in _instances(providers[i], shape)]
    if shape == "shared":
        for agg in range((compute_nodes + HOSTS_PER_AGGREGATE - 1) // HOSTS_PER_AGGREGATE):
            providers.append(
                {
                    "name": f"pool{agg:04d}",  # see _pool_name
                    "traits": ["MISC_SHARES_VIA_AGGREGATE"],
                    "aggregates": [f"agg{agg:04d}"],
                    "inventories": {"DISK_GB": dict(POOL_DISK)},
                }
            )
    filled = f", {fill_label(fill)} full" if consumers else ""
    return parse(
        {"name": f"{shape}-{compute_nodes}" + (f"-{fill_label(fill)}" if consumers else ""),
         "traits": ["CUSTOM_LEGACY"], "providers": providers, "consumers": consumers},
        source=f"<synthetic {shape} cloud of {compute_nodes} compute nodes{filled}>",
    )


def fill_label(fill: float | str) -> str:
    """``"0"``, ``"0.7"``, ``"adversarial"``: how a fill is named in options and reports."""
    return fill if fill == ADVERSARIAL else f"{float(fill):g}"


def parse_fill(text: str) -> float | str:
    """A fill as given on the command line: a fraction in [0, 1], or ``adversarial``."""
    if text == ADVERSARIAL:
        return ADVERSARIAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ValueError(f"fill {text!r}: expected a fraction from 0 to 1, or {ADVERSARIAL!r}")
    return value


def full_hosts(compute_nodes: int, fill: float | str) -> list[int]:
    """The numbers of the hosts a fill makes full."""
    if fill == ADVERSARIAL:
        by_uuid = sorted(range(compute_nodes), key=lambda i: derive_uuid("provider", _host_name(i)))
        return sorted(by_uuid[: round(ADVERSARIAL_FILL * compute_nodes)])
    fraction = parse_fill(str(fill))
    # Host i is full when the running count of full hosts, i * fraction, passes a whole number.
    return [i for i in range(compute_nodes) if math.floor((i + 1) * fraction) > math.floor(i * fraction)]


def _capacity(inventory: dict | int) -> tuple[int, int]:
    """(capacity, max_unit) of an inventory as written in this module."""
    inv = inventory if isinstance(inventory, dict) else {"total": inventory}
    capacity = int((inv["total"] - inv.get("reserved", 0)) * inv.get("allocation_ratio", 1.0))
    return capacity, inv.get("max_unit", inv["total"])


def _instances(host: dict, shape: str) -> list[dict]:
    """Consumers that together use all of ``host``'s tree (and its share of a disk pool).

    Each inventory is split into ``k`` near-equal parts, one per instance, ``k``
    being the fewest instances that keep every part within ``max_unit``; a part
    of 0 is left out (a one-unit GPU goes to one instance). The parts are far
    above every ``min_unit`` here, and every ``step_size`` is 1."""
    amounts: dict[str, dict[str, int]] = {}  # provider name -> class -> amount to use up
    limits = []
    stack = [host]
    while stack:
        provider = stack.pop()
        for rc, inventory in (provider.get("inventories") or {}).items():
            capacity, max_unit = _capacity(inventory)
            amounts.setdefault(provider["name"], {})[rc] = capacity
            limits.append(math.ceil(capacity / max_unit))
        stack.extend(provider.get("children", ()))
    if shape == "shared":  # the host's share of its aggregate's pool
        pool = _capacity(POOL_DISK)[0] // HOSTS_PER_AGGREGATE
        amounts[_pool_name(host)] = {"DISK_GB": pool}
    k = max(limits)
    instances = []
    for j in range(k):
        allocations = {
            name: {rc: part for rc, total in resources.items() if (part := total // k + (j < total % k))}
            for name, resources in amounts.items()
        }
        instances.append({
            "name": f"{host['name']}_vm{j}", "project": "bench", "user": "bench",
            "allocations": {name: resources for name, resources in allocations.items() if resources},
        })
    return instances


def _host_name(i: int) -> str:
    return f"cn{i:05d}"


def _pool_name(host: dict) -> str:
    return f"pool{int(host['aggregates'][0][3:]):04d}"


def _host(i: int, shape: str) -> dict:
    name = _host_name(i)
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
