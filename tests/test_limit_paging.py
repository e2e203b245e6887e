"""With ``limit``, the graph searches a page of trees at a time.

Placement builds every candidate and then cuts to ``limit`` (nova-spec
allocation-candidates-limit); the graph stops reading trees once it has
enough, so the work follows ``limit``, not the size of the cloud. These tests
check that the answer is still Placement's (same count, each candidate valid)
when the trees with room lie beyond the first page, and that a search with a
limit reads pages rather than the whole cloud, pages that skip full trees.
"""

from __future__ import annotations

import pytest

from workbench.comparison import parity
from workbench.engine import candidates, loader
from workbench.comparison.oracle import PlacementOracle
from workbench.scenario import parse

HOSTS = 260  # more than the first page (FIRST_PAGE) and its next one together
WITH_ROOM = {"cn037", "cn140", "cn141", "cn259"}  # the only hosts that can take VCPU


RARE = "CUSTOM_RARE"  # a trait only the hosts WITH_ROOM have


def _cloud():
    providers = []
    for i in range(HOSTS):
        name = f"cn{i:03d}"
        # A host is full when everything is reserved: no consumers needed.
        vcpu = {"total": 8, "reserved": 0 if name in WITH_ROOM else 8}
        traits = [RARE] if name in WITH_ROOM else []
        providers.append({"name": name, "inventories": {"VCPU": vcpu, "MEMORY_MB": 4096}, "traits": traits})
    return parse({"name": "mostly-full", "traits": [RARE], "providers": providers}, source="<test_limit_paging>")


@pytest.fixture(scope="module")
def mostly_full():
    return _cloud()


@pytest.fixture
def loaded(graph, mostly_full):
    loader.load(graph, mostly_full, reset=True)
    return graph


@pytest.mark.parametrize("limit", [1, 3, 4, 10])
def test_limit_finds_trees_beyond_the_first_pages(loaded, mostly_full, limit):
    # Four hosts have room wherever they fall in UUID order, so limit=N must
    # give min(N, 4) candidates, each valid: what Placement gives.
    order = sorted(p.uuid for p in mostly_full.providers)
    first_with_room = min(order.index(mostly_full.provider(name).uuid) for name in WITH_ROOM)
    assert first_with_room >= candidates.FIRST_PAGE  # a first page of trees in UUID order finds nothing
    query = f"resources=VCPU:1,MEMORY_MB:512&limit={limit}"
    with PlacementOracle() as oracle:
        oracle.load_bulk(mostly_full)
        verdict = parity.compare(loaded, oracle, query)
    assert verdict.acceptable, verdict.difference
    assert len(verdict.ours["allocation_requests"]) == min(limit, len(WITH_ROOM))


def test_a_limit_reads_only_trees_with_room(loaded, mostly_full):
    trace = candidates.explain(loaded, "resources=VCPU:1&limit=1")
    names = [q.name for q in trace]
    assert "providers_with_capacity" not in names  # the whole-cloud query
    # The page query itself skips the 256 full trees: only the four with room
    # for VCPU are searched (all four: the first page has room for more).
    with_room = {mostly_full.provider(name).uuid for name in WITH_ROOM}
    pages = [q for q in trace if q.name == "providers_in_trees_with_capacity"]
    assert len(pages) == 1 and set(pages[0].parameters["roots"]) == with_room


@pytest.mark.parametrize("limit", [1, 4, 5])
def test_pages_stop_once_the_limit_is_reached(loaded, mostly_full, limit):
    # Every host has room for memory, only the hosts WITH_ROOM have the trait:
    # where they fall in UUID order says how many pages (FIRST_PAGE trees or
    # the limit, then four times as many each time) must be read.
    order = sorted(mostly_full.providers, key=lambda p: p.uuid)
    positions = sorted(i for i, p in enumerate(order) if p.name in WITH_ROOM)
    last_needed = positions[limit - 1] if limit <= len(positions) else HOSTS - 1
    pages, covered, size = 0, 0, max(candidates.FIRST_PAGE, limit)
    while covered <= last_needed:
        pages, covered, size = pages + 1, covered + size, size * 4
    trace = candidates.explain(loaded, f"resources=MEMORY_MB:512&required={RARE}&limit={limit}")
    assert [q.name for q in trace].count("root_page_with_room") == pages
    assert len(trace[-1].parameters["roots"]) == min(limit, len(WITH_ROOM))  # the summaries' trees


def test_without_limit_the_whole_cloud_is_read_once(loaded):
    names = [q.name for q in candidates.explain(loaded, "resources=VCPU:1")]
    assert names.count("providers_with_capacity") == 1
    assert "root_page" not in names and "root_page_with_room" not in names
