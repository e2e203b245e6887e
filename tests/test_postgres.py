"""Placement on PostgreSQL, as in production: the oracle and the benchmark.

The in-process oracle normally keeps Placement's database in SQLite; with a
PostgreSQL server (``workbench.comparison.postgres.LocalPostgres``, Debian's package,
which ``./run.sh test`` installs) it must be the same Placement giving the
same answers, and the graph must agree with it too.
"""

from __future__ import annotations

import pytest

from workbench import bench, bench_report, synthetic
from workbench.comparison import parity
from workbench.comparison.compare import diff_candidates
from workbench.engine import loader
from workbench.comparison.oracle import PlacementOracle
from workbench.comparison.postgres import LocalPostgres


@pytest.fixture(scope="module")
def postgres_url():
    with LocalPostgres.temporary() as server:
        yield server.url


@pytest.mark.parametrize("shape", synthetic.SHAPES)
def test_placement_answers_the_same_on_postgresql(graph, postgres_url, shape):
    scenario = synthetic.cloud(4, shape)
    loader.load(graph, scenario, reset=True)
    with PlacementOracle() as on_sqlite, PlacementOracle(postgres=postgres_url) as on_postgres:
        on_sqlite.load_bulk(scenario)
        on_postgres.load_bulk(scenario)
        assert "PostgreSQL" in on_postgres.config()["database"]
        for request in bench.requests_for(shape):
            query = request.resolve(scenario)
            expected = on_sqlite.allocation_candidates(query)
            actual = on_postgres.allocation_candidates(query)
            assert actual[0] == expected[0] == 200, query
            if "limit" not in query:  # with a limit, which candidates come first may differ
                assert not diff_candidates(expected[1], actual[1]), query
            verdict = parity.compare(graph, on_postgres, query)
            assert verdict.acceptable, verdict.difference


def test_each_oracle_gets_its_own_empty_database(postgres_url):
    scenario = synthetic.cloud(2, "flat")
    with PlacementOracle(postgres=postgres_url) as first:
        first.load_bulk(scenario)
        assert len(first.allocation_candidates("resources=VCPU:1")[1]["allocation_requests"]) == 2
        with PlacementOracle(postgres=postgres_url) as second:
            assert second.allocation_candidates("resources=VCPU:1")[1]["allocation_requests"] == []
            # Standard traits and classes are there, as in a freshly synced Placement.
            assert second.allocation_candidates("resources=VCPU:1&required=HW_CPU_X86_AVX2")[0] == 200


def test_benchmark_times_placement_on_postgresql(graph, postgres_url, tmp_path):
    results = bench.run([3], ["flat"], repeat=1, graph=graph, progress=None, rest_load_max=0, postgres=postgres_url,
                        warm_up_s=0.2)
    assert not results["mismatches"]
    for r in results["results"]:
        assert r["placement_postgresql"]["p50_ms"] > 0 and r["ratio_p50_postgresql"] > 0
    assert results["load"][0]["placement_postgresql_s"] > 0
    text = bench_report.markdown(results)
    assert "## Placement on PostgreSQL" in text and "flat_limit10" in text.split("## Placement on PostgreSQL")[1]
    bench_report.plot(results, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 0
