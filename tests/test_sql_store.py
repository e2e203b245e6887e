"""The SQL store: the graph's search, its questions asked in SQL over Placement's own database.

"Hold the algorithm fixed and swap the store": :func:`sql_store.find_sql`
runs the same :class:`CandidateSearch` as :func:`candidates.find`, on the
database the real Placement 16.0.0 filled (on PostgreSQL, as in
production). Since only the store differs, its answers must be the graph's,
exactly (with ``limit`` too: both page through roots in UUID order), and
Placement's (judged by :func:`parity.compare`, known Placement bugs named).
Asked: every query of the fixture files in tests/parity/, generated clouds
and queries, and a limit that has to read several pages of roots; each with
the tree walks as recursive CTEs (the default) and with Placement's
``root_provider_id`` column. The fixture queries are asked in MariaDB's
dialect too, of Placement's database on MariaDB (the graph's answers).
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from strategies import cloud_and_queries
from workbench import synthetic
from workbench.comparison import parity, sql_store
from workbench.comparison.compare import diff_candidates
from workbench.comparison.mariadb import LocalMariaDB
from workbench.comparison.oracle import PlacementOracle
from workbench.comparison.postgres import LocalPostgres
from workbench.engine import candidates, loader
from workbench.engine.errors import PlacementError
from workbench.ids import derive_uuid
from workbench.scenario import parse

PARITY_DIR = Path(__file__).parent / "parity"
GENERATED_CLOUDS = int(os.environ.get("SQL_STORE_CLOUDS", "6"))

# The queries that returned a row, over the whole module (see the last test).
ANSWERED: set[str] = set()


@pytest.fixture(scope="module")
def postgres_url():
    with LocalPostgres.temporary() as server:
        yield server.url


@pytest.fixture(scope="module")
def mariadb_url():
    with LocalMariaDB.temporary() as server:
        yield server.url


@contextlib.contextmanager
def placement_per_scenario(**server):
    """``get(scenario)``: the real Placement on its own database of ``server``, loaded once per scenario."""
    oracles: dict[str, PlacementOracle] = {}

    def get(scenario):
        if scenario.source not in oracles:
            oracle = PlacementOracle(**server)
            oracle.load(scenario)
            oracles[scenario.source] = oracle
        return oracles[scenario.source]

    try:
        yield get
    finally:
        for oracle in oracles.values():
            oracle.close()


@pytest.fixture(scope="module")
def placement_on(postgres_url):
    with placement_per_scenario(postgres=postgres_url) as get:
        yield get


@pytest.fixture(scope="module")
def placement_on_mariadb(mariadb_url):
    with placement_per_scenario(mariadb=mariadb_url) as get:
        yield get


def ask_sql(engine, query: str, root_column: bool = False) -> tuple[int, dict]:
    trace: list[candidates.QueryTrace] = []
    try:
        answer = 200, sql_store.find_sql(engine, query, trace, root_column=root_column)
    except PlacementError as error:
        answer = error.status, error.body()
    ANSWERED.update(t.name for t in trace if t.rows)
    return answer


def same_answer(expected: tuple[int, dict], actual: tuple[int, dict]) -> str:
    """Empty if both are the same status and body (candidates compared order-free)."""
    if expected[0] != actual[0]:
        return f"status {expected[0]} != {actual[0]}: {expected[1]} / {actual[1]}"
    if expected[0] != 200:
        return "" if expected[1] == actual[1] else f"{expected[1]} != {actual[1]}"
    return diff_candidates(expected[1], actual[1])


def check_same_as_graph(graph, engine, query: str) -> tuple[int, dict]:
    """The SQL store answers as the graph does, with either way of finding roots; its answer."""
    sql = ask_sql(engine, query)
    assert not (d := same_answer(parity.ask_graph(graph, query), sql)), f"SQL store and graph differ on {query}: {d}"
    by_column = ask_sql(engine, query, root_column=True)
    assert not (d := same_answer(sql, by_column)), f"root_provider_id variant differs on {query}: {d}"
    return sql


def check_query(graph, oracle: PlacementOracle, scenario, query: str) -> parity.Verdict:
    """The SQL store answers as the graph does, and as Placement does."""
    names = {p.uuid: p.name for p in scenario.providers}
    answer = check_same_as_graph(graph, oracle.engine, query)

    def ask(q: str) -> tuple[int, dict]:  # compare() may normalise what it is given in place
        return copy.deepcopy(answer) if q == query else ask_sql(oracle.engine, q)

    verdict = parity.compare(graph, oracle, query, names, ask=ask)
    assert verdict.acceptable, verdict.difference
    return verdict


# -- Placement's own fixtures and gabbi queries --------------------------------------


def _fixture_cases():
    for path in sorted(PARITY_DIR.glob("*.yaml")):
        spec = yaml.safe_load(path.read_text())
        for case in spec["queries"]:
            yield pytest.param(spec["scenario"], case, id=f"{path.stem}::{case['name']}")


@pytest.mark.parametrize("scenario_path, case", list(_fixture_cases()))
def test_fixture_query(scenario_graph, placement_on, scenario_path, case):
    graph, scenario = scenario_graph(scenario_path)
    query = parity.resolve_placeholders(case["query"], scenario)
    verdict = check_query(graph, placement_on(scenario), scenario, query)
    assert verdict.status == case["status"]
    if "candidates" in case:  # the number Placement's own gabbi test asserts
        assert len(verdict.ours["allocation_requests"]) == case["candidates"]


@pytest.mark.parametrize("scenario_path, case", list(_fixture_cases()))
def test_fixture_query_on_mariadb(scenario_graph, placement_on_mariadb, scenario_path, case):
    """The same queries in MariaDB's dialect, on Placement's database there: the graph's answers."""
    graph, scenario = scenario_graph(scenario_path)
    query = parity.resolve_placeholders(case["query"], scenario)
    check_same_as_graph(graph, placement_on_mariadb(scenario).engine, query)


# -- limit: the trees a page at a time ------------------------------------------------


def _half_used_hosts_first() -> tuple[dict, list[str]]:
    """Six hosts of 4 VCPU; the three first in UUID order have 2 in use."""
    hosts = sorted((derive_uuid("provider", f"h{i}"), f"h{i}") for i in range(6))
    document = {
        "name": "paging",
        "providers": [{"name": name, "inventories": {"VCPU": {"total": 4}}} for _, name in hosts],
        "consumers": [
            {"name": f"vm_{name}", "project": "p", "user": "u", "allocations": {name: {"VCPU": 2}}}
            for _, name in hosts[:3]
        ],
    }
    return document, [uuid for uuid, _ in hosts]


def test_limit_reads_roots_page_by_page(graph, postgres_url, monkeypatch):
    """Two groups of 2 VCPU each fit a half-used host alone, so its tree has room
    for each and is on a page, but not together. Pages hold (at least) the limit:
    the first page, 2 roots, holds half-used hosts and gives nothing; the second,
    four times larger, holds the rest, and the first two free hosts are the answer."""
    monkeypatch.setattr(candidates, "FIRST_PAGE", 1)
    document, uuids = _half_used_hosts_first()
    scenario = parse(document, source="<paging>")
    loader.load(graph, scenario, reset=True)
    with PlacementOracle(postgres=postgres_url) as oracle:
        oracle.load(scenario)
        query = "resources1=VCPU:2&resources2=VCPU:2&group_policy=none&limit=2"
        trace: list[candidates.QueryTrace] = []
        answer = sql_store.find_sql(oracle.engine, query, trace)
        pages = [t.parameters for t in trace if t.name == "root_page_with_room"]
        assert [(page["after"], page["size"]) for page in pages] == [("", 2), (uuids[1], 8)]
        chosen = [rp for ar in answer["allocation_requests"] for rp in ar["allocations"]]
        assert sorted(chosen) == uuids[3:5]
        check_query(graph, oracle, scenario, query)


# -- generated clouds and queries -------------------------------------------------------


@settings(
    max_examples=GENERATED_CLOUDS,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cloud_and_queries(min_queries=8, max_queries=12))
def test_generated_clouds(graph, postgres_url, case):
    cloud, queries = case
    scenario = parse(cloud.document, source="<generated>")
    loader.load(graph, scenario, reset=True)
    saved, candidates.FIRST_PAGE = candidates.FIRST_PAGE, 1  # several pages even in a small cloud
    try:
        with PlacementOracle(postgres=postgres_url) as oracle:
            oracle.load(scenario)
            for query in queries:
                check_query(graph, oracle, scenario, parity.resolve_placeholders(query.text, scenario))
    finally:
        candidates.FIRST_PAGE = saved


# -- the transaction ----------------------------------------------------------------------


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_one_read_only_snapshot_per_search(request, server):
    """What a search reads stays as it was when it began, and it cannot write."""
    scenario = synthetic.cloud(2, "flat")
    with PlacementOracle(**{server: request.getfixturevalue(f"{server}_url")}) as oracle:
        oracle.load_bulk(scenario)
        count = "SELECT count(*) AS providers FROM resource_providers"
        with sql_store.reading(oracle.engine) as reader:
            assert reader.read(count) == [{"providers": 2}]
            # Another client adds a provider meanwhile: this search does not see it.
            status, _ = oracle.request("POST", "/resource_providers", {"name": "late"})
            assert status == 200
            assert reader.read(count) == [{"providers": 2}]
            with pytest.raises(Exception, match="(?i)read.only transaction"):
                reader.read("DELETE FROM allocations")
        with sql_store.reading(oracle.engine) as reader:
            assert reader.read(count) == [{"providers": 3}]


def test_only_postgresql_and_mariadb():
    engine = sqlalchemy.create_engine("sqlite://")
    with pytest.raises(ValueError, match="no SQL for the sqlite dialect"):
        sql_store.queries_for(engine)


def test_every_question_was_asked():
    """Each query ran, and returned a row, in the checks above (root_page with a limit,
    sharing_anchors with sharing providers, lineages with same_subtree, ...)."""
    if not ANSWERED:
        pytest.skip("the parity tests above did not run")
    assert set(sql_store.SQL) == set(candidates.CYPHER)
    assert not (missing := set(candidates.CYPHER) - ANSWERED), f"never returned a row: {missing}"
