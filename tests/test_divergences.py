"""The two places where the graph engine deliberately differs from Placement
16.0.0 (docs/divergences.md): both answers, side by side, and why.
"""

import pytest

from workbench.comparison import parity
from workbench.engine import candidates, loader
from workbench.engine.errors import BadRequest
from workbench.comparison.oracle import PlacementOracle
from workbench.scenario import parse

# Three compute nodes, each with two NUMA cells that have VCPU and memory, and
# a shared disk pool in the same aggregate (the reference's reproduction).
CLOUD = parse(
    {
        "providers": [
            {
                "name": f"cn{n}",
                "aggregates": ["agg"],
                "children": [
                    {"name": f"cn{n}_numa{m}", "inventories": {"VCPU": 8, "MEMORY_MB": 4096}} for m in range(2)
                ],
            }
            for n in range(3)
        ]
        + [
            {
                "name": "shared_disk",
                "traits": ["MISC_SHARES_VIA_AGGREGATE"],
                "aggregates": ["agg"],
                "inventories": {"DISK_GB": 1000},
            }
        ]
    }
)
QUERY = "resources_N=VCPU:1,MEMORY_MB:1024&resources=DISK_GB:10"


@pytest.fixture
def both(graph):
    loader.load(graph, CLOUD, reset=True)
    with PlacementOracle() as oracle:
        oracle.load(CLOUD)
        yield graph, oracle


def numa_cells(body):
    names = {p.uuid: p.name for p in CLOUD.providers}
    return sorted(names[rp] for r in body["allocation_requests"] for rp in r["mappings"]["_N"])


def test_sharing_anchor_collapse(both):
    graph, oracle = both
    # Each of the six NUMA cells can hold the suffixed group; the disk comes
    # from the pool every node shares: six candidates.
    ours = candidates.find(graph, QUERY)
    assert numa_cells(ours) == [f"cn{n}_numa{m}" for n in range(3) for m in range(2)]

    # Placement keeps one arbitrary node's two cells and drops the rest.
    status, theirs = oracle.allocation_candidates(QUERY)
    assert status == 200
    kept = numa_cells(theirs)
    assert len(kept) == 2 and len({cell.split("_")[0] for cell in kept}) == 1

    # ... although it offers every one of them when the disk is asked for in a
    # suffixed group of its own (its documented workaround, another code path).
    workaround = "resources_N=VCPU:1,MEMORY_MB:1024&resources_D=DISK_GB:10&group_policy=none"
    assert numa_cells(oracle.allocation_candidates(workaround)[1]) == numa_cells(ours)

    # With the anchor counted in Placement's comparison, it agrees with the graph.
    with parity.sharing_anchor_bug_fixed():
        fixed = oracle.allocation_candidates(QUERY)[1]
    assert numa_cells(fixed) == numa_cells(ours)

    verdict = parity.compare(graph, oracle, QUERY)
    assert not verdict.agrees and verdict.divergence == parity.SHARING_ANCHOR_BUG


def test_the_fix_is_undone_after_use(both):
    graph, oracle = both
    with parity.sharing_anchor_bug_fixed():
        pass
    assert len(numa_cells(oracle.allocation_candidates(QUERY)[1])) == 2


def test_unknown_trait_hidden_behind_an_empty_group(both):
    graph, oracle = both
    # The first group asks for more VCPU than any cell has, so Placement stops
    # there and never looks up the second group's trait.
    query = "resources1=VCPU:99&resources2=VCPU:1&required2=CUSTOM_NO_SUCH_TRAIT&group_policy=none"
    status, theirs = oracle.allocation_candidates(query)
    assert (status, theirs["allocation_requests"]) == (200, [])
    # Asked with data that does match, Placement does report the name.
    status, _ = oracle.allocation_candidates("resources=VCPU:1&required=CUSTOM_NO_SUCH_TRAIT")
    assert status == 400

    with pytest.raises(BadRequest, match="No such trait\\(s\\): CUSTOM_NO_SUCH_TRAIT"):
        candidates.find(graph, query)
    assert parity.compare(graph, oracle, query).divergence == parity.UNKNOWN_NAME_HIDDEN
