"""Placement on MariaDB, its most common backend: the oracle and the benchmark.

With a MariaDB server (``workbench.comparison.mariadb.LocalMariaDB``, Debian's
``mariadb-server``, which ``./run.sh test`` installs) the oracle must be the
same Placement giving the same answers as on SQLite, and the graph must agree
with it too, on a cloud in use (existing allocations).
"""

from __future__ import annotations

import pytest

from workbench import bench, bench_report, synthetic
from workbench.comparison import parity
from workbench.comparison.compare import diff_candidates
from workbench.comparison.mariadb import LocalMariaDB
from workbench.comparison.oracle import PlacementOracle
from workbench.engine import loader


@pytest.fixture(scope="module")
def mariadb_url():
    with LocalMariaDB.temporary() as server:
        yield server.url


def test_placement_answers_the_same_on_mariadb(graph, mariadb_url):
    scenario = synthetic.cloud(6, "flat", 0.5)  # 3 of 6 hosts full
    loader.load(graph, scenario, reset=True)
    with PlacementOracle() as on_sqlite, PlacementOracle(mariadb=mariadb_url) as on_mariadb:
        on_sqlite.load_bulk(scenario)
        on_mariadb.load_bulk(scenario)
        assert "MariaDB" in on_mariadb.config()["database"]
        query = bench.FLAT
        expected = on_sqlite.allocation_candidates(query)
        actual = on_mariadb.allocation_candidates(query)
        assert actual[0] == expected[0] == 200
        assert len(actual[1]["allocation_requests"]) == 3  # only the free hosts
        assert not diff_candidates(expected[1], actual[1])
        verdict = parity.compare(graph, on_mariadb, query)
        assert verdict.acceptable, verdict.difference


def test_benchmark_times_placement_on_mariadb(graph, mariadb_url, monkeypatch):
    monkeypatch.setattr(bench, "REQUESTS", tuple(r for r in bench.REQUESTS if r.name in ("flat", "flat_limit10")))
    results = bench.run([3], ["flat"], repeat=1, graph=graph, progress=None, rest_load_max=0, mariadb=mariadb_url,
                        gc_regimes=("paused",), warm_up_s=0.2)
    assert not results["mismatches"]
    for r in results["results"]:
        mariadb = r["placement_mariadb"]
        assert mariadb["p50_ms"] > 0 and r["ratio_p50_mariadb"] > 0
        # MariaDB's driver reads whole results inside execute: the SQL share is real and below the total
        assert mariadb["sql_statements"] > 0 and 0 < mariadb["sql_p50_ms"] < mariadb["p50_ms"]
    assert results["load"][0]["placement_mariadb_s"] > 0
    text = bench_report.markdown(results)
    assert "## Placement on MariaDB" in text and "flat_limit10" in text.split("## Placement on MariaDB")[1]
