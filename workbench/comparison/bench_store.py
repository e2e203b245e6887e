"""``workbench bench-store``: the same search on two stores, measured side by side.

Issue 17's controlled experiment: the engine's :class:`CandidateSearch` (the
Python combiner, request parsing and summaries) runs unchanged on the graph
(Neo4j, :data:`candidates.CYPHER`) and on Placement's own database
(PostgreSQL, :data:`sql_store.SQL`, filled by the real Placement 16.0.0). On
the benchmark's synthetic clouds and request shapes (:mod:`workbench.bench`),
for each store:

1. **answers first**: each store's answer is judged against Placement's own
   (:func:`workbench.comparison.parity.compare`); a store that disagrees is
   recorded and not timed;
2. one warm-up and ``repeat`` timed searches (the cycle collector paused for
   both, as the engine does); of the search with the median time: the time in
   the named queries (the database's answer, sent and decoded: "database"),
   the rest ("Python": parsing, combining, summaries, and the transaction's
   begin and commit), and per named query its calls, time, rows and bytes
   (the rows as decoded, measured as compact JSON, the same rule for both
   stores);
3. on the ``numa`` cloud, the hard case (:mod:`workbench.comparison.experiment`)
   four ways, each checked against Placement first: one Cypher pattern, the
   Cypher queries with the Python combiner, the SQL queries with the same
   combiner, and one recursive-CTE SQL statement.

Writes ``OUT.json`` and ``OUT.md`` with the date, the machine and the commit
(:func:`workbench.bench.machine_info`), and the code per concern
(:func:`experiment.code_by_concern`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from workbench import bench, synthetic
from workbench.comparison import experiment, parity
from workbench.comparison.oracle import PlacementOracle
from workbench.engine import loader
from workbench.engine.errors import PlacementError
from workbench.graphdb.db import Graph

# sql: tree walks as recursive CTEs over parent_provider_id (no stored root, like
# the graph); sql-root: roots read from the root_provider_id Placement maintains.
STORES = ("graph", "sql", "sql-root")
DEFAULT_OUT = Path("results/store-experiment")
DEFAULT_FILLS = (0.0, 0.7)
HARD_CASE_WAYS = ("cypher_pattern", "cypher_and_combiner", "sql_and_combiner", "sql_recursive_cte")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _time_store(run, search_class, query: str, repeat: int) -> dict:
    """The timed search with the median total, whole: its split and per-query
    figures then add up (medians taken column by column need not)."""
    experiment.measure_search(run, search_class, query)  # warm-up
    runs = sorted((experiment.measure_search(run, search_class, query) for _ in range(repeat)),
                  key=lambda r: r["search_ms"])
    median = runs[len(runs) // 2]
    return {
        "search_ms": round(median["search_ms"], 2),
        "db_ms": round(median["db_ms"], 2),
        "python_ms": round(median["python_ms"], 2),
        "search_ms_runs": [round(r["search_ms"], 2) for r in runs],
        "rows": sum(q["rows"] for q in median["queries"].values()),
        "bytes": median["bytes"],
        "queries": {name: {**q, "ms": round(q["ms"], 2)} for name, q in median["queries"].items()},
    }


def _asker(find: Callable[[str], dict]) -> Callable[[str], tuple[int, dict]]:
    def ask(query: str) -> tuple[int, dict]:
        try:
            return 200, find(query)
        except PlacementError as error:
            return error.status, error.body()

    return ask


def _timed(work: Callable[[], object], repeat: int) -> float:
    work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return _median(times)


def _hard_case(graph, oracle, stores, repeat: int, say) -> dict:
    """The hard case, each way checked against Placement, then timed."""
    from workbench.comparison.sql_store import find_sql

    query = experiment.hard_case_query("isolate")
    status, body = oracle.allocation_candidates(query)
    expected = experiment.candidate_set(body["allocation_requests"]) if status == 200 else None
    ways = {
        "cypher_pattern": ("graph", lambda: experiment.hard_case_by_pattern(graph)),
        "cypher_and_combiner": ("graph", lambda: experiment.hard_case_by_combiner(graph)),
        "sql_and_combiner": ("sql", lambda: find_sql(oracle.engine, query)["allocation_requests"]),
        "sql_recursive_cte": ("sql", lambda: experiment.hard_case_by_sql(oracle.engine)),
    }
    found = {"query": query, "placement_status": status, "candidates": len(expected or []), "ways": {}}
    for way in HARD_CASE_WAYS:
        store, work = ways[way]
        if store not in stores:
            continue
        agrees = experiment.candidate_set(work()) == expected
        found["ways"][way] = {"agrees": agrees, "p50_ms": _timed(work, repeat) if agrees else None}
        say(f"  hard case, {way}: " + (f"{found['ways'][way]['p50_ms']} ms" if agrees else "DISAGREES"))
    return found


def run(hosts: list[int], stores: tuple[str, ...], repeat: int, shapes: list[str], fills: tuple,
        graph: Graph, postgres: str | None, say: Callable[[str], None],
        warm_up_s: float = bench.WARM_UP_SECONDS) -> dict:
    from workbench.notebook import scenario_path
    from workbench.scenario import load_file

    settings = {
        "stores": list(stores), "repeat": repeat, "warm_up": 1, "reported": "the search with the median time",
        "hosts": hosts, "shapes": shapes, "fills": [synthetic.fill_label(f) for f in fills],
        "sql_database": "PostgreSQL (Placement's schema, filled by Placement, then ANALYZE)" if postgres else None,
        "max_candidates": bench.DEFAULT_MAX_CANDIDATES,
        "timed": " ".join(experiment.measure_search.__doc__.split("\n\n")[0].split()),
    }
    results = {"machine": bench.machine_info(graph), "settings": settings,
               "results": [], "hard_case": [], "skipped": [], "mismatches": []}
    results["settings"]["neo4j_warm_up_s"] = bench.warm_up_neo4j(graph, shapes, warm_up_s, say)
    demo = load_file(scenario_path("demo"))
    with PlacementOracle() as oracle:
        oracle.load_bulk(demo)
        results["code_by_concern"] = experiment.code_by_concern(oracle, demo)
    for n in hosts:
        for shape in shapes:
            for fill in fills:
                _bench_cloud(n, shape, fill, stores, repeat, graph, postgres, results, say)
    return results


def _bench_cloud(n, shape, fill, stores, repeat, graph, postgres, results, say):
    from workbench.comparison.sql_store import find_sql

    cloud = synthetic.cloud(n, shape, fill)
    label = synthetic.fill_label(fill)
    tag = f"[{n} {shape} fill {label}]"
    say(f"{tag} loading {len(cloud.providers)} providers into Neo4j and into Placement")
    loader.load(graph, cloud, reset=True)
    with PlacementOracle(postgres=postgres) as oracle:
        oracle.load_bulk(cloud)
        oracle.analyze()
        runs = {"graph": experiment.graph_store(graph)}
        asks = {"graph": None}
        for store, root_column in (("sql", False), ("sql-root", True)):
            if store in stores:
                runs[store] = experiment.sql_store(oracle.engine, root_column)
                asks[store] = _asker(lambda q, root_column=root_column: find_sql(oracle.engine, q, root_column=root_column))
        for shape_request in bench.requests_for(shape):
            query = shape_request.resolve(cloud)
            identity = {"compute_nodes": n, "cloud": shape, "fill": label, "request": shape_request.name,
                        "query": query}
            expected = (shape_request.built or shape_request.expected)(n)
            if expected > bench.DEFAULT_MAX_CANDIDATES:
                results["skipped"].append({**identity, "reason": f"about {expected:,} candidates expected"})
                continue
            entry = {**identity, "stores": {}}
            for store in stores:
                verdict = parity.compare(graph, oracle, query, ask=asks[store])
                if not verdict.acceptable or verdict.status != 200:
                    results["mismatches"].append({**identity, "store": store,
                                                  "difference": (verdict.difference or str(verdict.status))[:2000]})
                    say(f"{tag} {shape_request.name}: {store} DISAGREES with Placement")
                    continue
                entry["candidates"] = len(verdict.ours["allocation_requests"])
                entry["stores"][store] = _time_store(*runs[store], query, repeat)
                timed = entry["stores"][store]
                say(f"{tag} {shape_request.name}: {store} {timed['search_ms']} ms "
                    f"(database {timed['db_ms']}, Python {timed['python_ms']}), {timed['bytes']:,} bytes")
            results["results"].append(entry)
        if shape == "numa":
            results["hard_case"].append({"compute_nodes": n, "fill": label,
                                         **_hard_case(graph, oracle, stores, repeat, say)})


# -- the report ---------------------------------------------------------------------------


def markdown(results: dict) -> str:
    machine = results["machine"]
    lines = [
        "# The same search on the graph and on SQL (`workbench bench-store`)",
        "",
        f"Date {machine['date']}; {machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
        f"Neo4j {machine['neo4j_version']}; Placement {machine['placement_version']}; workbench "
        f"{machine['workbench']['commit']}. Repeat {results['settings']['repeat']} after one warm-up; the search "
        "with the median time is shown. Database = the named queries, answers decoded; Python = the rest of the "
        "search (parsing, combining, summaries, transaction begin and commit).",
        "",
        "## Per request",
        "",
        "| hosts | cloud | fill | request | candidates | store | search ms | database ms | Python ms | rows | bytes |",
        "|---:|---|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results["results"]:
        for store, t in r["stores"].items():
            lines.append(f"| {r['compute_nodes']} | {r['cloud']} | {r['fill']} | {r['request']} | "
                         f"{r.get('candidates', '')} | {store} | {t['search_ms']} | {t['db_ms']} | "
                         f"{t['python_ms']} | {t['rows']:,} | {t['bytes']:,} |")
    lines += ["", "## Per named query (summed over the requests above)", "",
              "| query | store | calls | ms | rows | bytes |", "|---|---|---:|---:|---:|---:|"]
    for (name, store), q in sorted(per_query(results).items()):
        lines.append(f"| {name} | {store} | {q['calls']} | {q['ms']:.1f} | {q['rows']:,} | {q['bytes']:,} |")
    lines += ["", "## The hard case (NUMA + VF same_subtree, group_policy=isolate)", "",
              "| hosts | fill | candidates | " + " | ".join(HARD_CASE_WAYS) + " |",
              "|---:|---|---:|" + "---:|" * len(HARD_CASE_WAYS)]
    for h in results["hard_case"]:
        cells = []
        for way in HARD_CASE_WAYS:
            w = h["ways"].get(way)
            cells.append("-" if w is None else (f"{w['p50_ms']} ms" if w["agrees"] else "disagrees"))
        lines.append(f"| {h['compute_nodes']} | {h['fill']} | {h['candidates']} | " + " | ".join(cells) + " |")
    lines += ["", "## Code per concern (lines without comments or blank lines)", "",
              "| concern | Cypher | SQL store | Placement Python | Placement SQL rendered (statements) |",
              "|---|---:|---:|---:|---:|"]
    for c in results["code_by_concern"]:
        if "cypher_lines" in c:
            lines.append(f"| {c['concern']} | {c['cypher_lines']} | {c['sql_store_lines']} | "
                         f"{c['placement_python_lines']} | {c['placement_sql_lines']} "
                         f"({c['placement_sql_statements']}) |")
    if results["mismatches"] or results["skipped"]:
        lines += ["", "## Not timed", ""]
        lines += [f"* {m['request']} ({m['compute_nodes']} {m['cloud']} fill {m['fill']}), {m['store']}: "
                  f"disagrees with Placement" for m in results["mismatches"]]
        lines += [f"* {s['request']} ({s['compute_nodes']} {s['cloud']} fill {s['fill']}): {s['reason']}"
                  for s in results["skipped"]]
    return "\n".join(lines) + "\n"


def per_query(results: dict) -> dict[tuple[str, str], dict]:
    """(query name, store) -> calls, ms, rows and bytes summed over every timed request."""
    totals: dict[tuple[str, str], dict] = {}
    for r in results["results"]:
        for store, t in r["stores"].items():
            for name, q in t["queries"].items():
                total = totals.setdefault((name, store), {"calls": 0, "ms": 0.0, "rows": 0, "bytes": 0})
                for key in total:
                    total[key] += q[key]
    return totals


# -- command line ---------------------------------------------------------------------------


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-store",
        help="the same search on the graph and on Placement's SQL database, measured side by side",
        description="The engine's candidate search runs unchanged on the graph (Neo4j) and on Placement's own "
        "database (the same named questions in SQL over its schema, PostgreSQL, filled by the real Placement "
        "16.0.0). On the benchmark's synthetic clouds and request shapes, each store's answers are checked against "
        "Placement's first, then timed: per named query its time, rows and bytes, and the search split into "
        "database and Python; on the numa cloud also the NUMA + VF request four ways. Neo4j: NEO4J_URI or the "
        "local server; ITS DATABASE IS EMPTIED. The SQL store runs on a throwaway PostgreSQL (Debian's "
        "postgresql package). Progress on stderr.",
    )
    p.add_argument("--hosts", type=int, nargs="+", default=[1000], metavar="N", help="cloud sizes (default 1000)")
    p.add_argument("--stores", default=",".join(STORES),
                   help="comma-separated: graph, sql (recursive CTEs), sql-root (Placement's root_provider_id) "
                   "(default all three)")
    p.add_argument("--repeat", type=int, default=5, help="timed searches per store and request (default 5)")
    p.add_argument("--shape", nargs="+", choices=synthetic.SHAPES, default=list(synthetic.SHAPES), metavar="S",
                   help=f"cloud shapes ({', '.join(synthetic.SHAPES)}; default all)")
    p.add_argument("--fill", type=bench._fills, default=list(DEFAULT_FILLS), metavar="F[,F...]",
                   help="fractions of full hosts and/or 'adversarial' (default 0,0.7)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"write OUT.json and OUT.md (default {DEFAULT_OUT})")
    p.set_defaults(func=cmd_bench_store)


def cmd_bench_store(args: argparse.Namespace) -> int:
    from workbench.comparison.postgres import LocalPostgres, PostgresUnavailable

    stores = tuple(s.strip() for s in args.stores.split(",") if s.strip())
    if not stores or set(stores) - set(STORES) or "graph" not in stores:
        print(f"error: --stores {args.stores!r}: give graph, and any of sql, sql-root", file=sys.stderr)
        return 2
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        with contextlib.ExitStack() as stack:
            postgres = stack.enter_context(LocalPostgres.temporary()).url if len(stores) > 1 else None
            graph = stack.enter_context(contextlib.closing(Graph.connect()))
            results = run(args.hosts, stores, args.repeat, args.shape, tuple(args.fill), graph, postgres, say)
    except PostgresUnavailable as missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(markdown(results))
    say(f"wrote {json_path} and {md_path}")
    return 1 if results["mismatches"] else 0
