"""The ``bench-http`` and ``claim-load`` subcommands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench import synthetic

DEFAULT_OUT = Path("results/http")


def _numbers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated whole numbers") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every number must be at least 1")
    return values


def _shapes(text: str) -> list[str]:
    shapes = text.split(",")
    if unknown := [s for s in shapes if s not in synthetic.SHAPES]:
        raise argparse.ArgumentTypeError(f"unknown cloud shape(s) {unknown}; choose from {', '.join(synthetic.SHAPES)}")
    return shapes


def _fills(text: str) -> list:
    try:
        return [synthetic.parse_fill(part) for part in text.split(",")]
    except ValueError as bad:
        raise argparse.ArgumentTypeError(str(bad)) from None


def add_parsers(sub) -> None:
    from workbench.overhttp import bench, claims

    p = sub.add_parser(
        "bench-http",
        help="time allocation candidates on the graph vs the real Placement, both over HTTP",
        description="Serve the graph (Neo4j of the environment; ITS DATABASE IS EMPTIED) and the real Placement "
        "(a throwaway PostgreSQL) with the same gunicorn set-up and worker count, load the same synthetic "
        "cloud into both by their fast paths, check their answers agree, then time each request shape with "
        "one keep-alive client (warm-up, then p50 and p95). Progress on stderr; exit 1 on a disagreement.",
    )
    p.add_argument("--hosts", type=_numbers, default=list(bench.DEFAULT_SIZES), metavar="N[,N...]",
                   help="cloud sizes in compute nodes (default 100,1000,10000)")
    p.add_argument("--shapes", type=_shapes, default=list(synthetic.SHAPES), metavar="S[,S...]",
                   help=f"cloud shapes ({','.join(synthetic.SHAPES)}; default all)")
    p.add_argument("--fill", type=_fills, default=[0.0], metavar="F[,F...]",
                   help="fractions of full hosts and/or 'adversarial' (default 0)")
    p.add_argument("--requests", type=lambda t: tuple(t.split(",")), default=(), metavar="NAME[,NAME...]",
                   help="only these request shapes (names as in `workbench bench`; default all of each cloud shape)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers of each service (default 2)")
    p.add_argument("--repeat", type=int, default=bench.DEFAULT_REPEAT, help="timed rounds per request shape")
    p.add_argument("--warm-up", type=int, default=bench.DEFAULT_WARM_UP, help="untimed requests first, each")
    p.add_argument("--allow-mismatch", action="store_true", help="record disagreements and carry on")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the JSON and Markdown ({DEFAULT_OUT})")
    p.set_defaults(func=cmd_bench_http)

    p = sub.add_parser(
        "claim-load",
        help="concurrent boots (candidates, then claim; retry on 409) against both services, then check",
        description="For each client count, load a fresh cloud that the run fills up into each service and "
        "run C client processes, each making B boots Nova's way (GET /allocation_candidates with limit=1000, "
        "PUT /allocations for a random candidate, ask again on 409). Reports claims/s, boot latency, 409s, "
        "retries and server CPU, then checks through the API and in each store: no provider over capacity, "
        "usage = sum of allocations, every 2xx claim stored exactly. The graph uses the Neo4j of the "
        "environment (ITS DATABASE IS EMPTIED); Placement a throwaway PostgreSQL. Exit 1 on any violation.",
    )
    p.add_argument("--hosts", type=int, default=1000, help="compute nodes (default 1000)")
    p.add_argument("--clients", type=_numbers, default=[1, 8, 32], metavar="C[,C...]", help="default 1,8,32")
    p.add_argument("--boots", type=int, default=20, help="boots per client (default 20)")
    p.add_argument("--workers", type=int, default=2, help="Placement's gunicorn workers (default 2)")
    p.add_argument("--graph-workers", type=_numbers, default=[1, 4], metavar="W[,W...]",
                   help="the graph service's worker counts to run (default 1,4)")
    p.add_argument("--services", type=lambda t: t.split(","), default=list(claims.SERVICES), metavar="S[,S...]",
                   help="placement (as shipped), placement-retry-1 (with [placement] allocation_conflict_retry_count "
                   "= 1, the workaround for its retry bug), graph (default all three)")
    p.add_argument("--max-retries", type=int, default=claims.DEFAULT_MAX_RETRIES, help="409 retries per boot")
    p.add_argument("--warm-up-boots", type=int, default=3,
                   help="untimed boots per client, made and deleted before the start (default 3)")
    p.add_argument("--max-seconds", type=float, default=claims.DEFAULT_SECONDS,
                   help="no boot starts later than this into a run (default 600)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"directory for the JSON and Markdown ({DEFAULT_OUT})")
    p.set_defaults(func=cmd_claim_load)


def _finish(results: dict, out: Path) -> None:
    from workbench.overhttp import report

    for path in report.write(results, out):
        print(f"wrote {path}", file=sys.stderr)


def cmd_bench_http(args: argparse.Namespace) -> int:
    from workbench.bench import BenchMismatch
    from workbench.comparison.postgres import PostgresUnavailable
    from workbench.overhttp import bench

    plan = bench.Plan(repeat=args.repeat, warm_up=args.warm_up, workers=args.workers,
                      allow_mismatch=args.allow_mismatch, requests=args.requests)
    try:
        results = bench.run(args.hosts, args.shapes, plan, fills=tuple(args.fill))
    except (ValueError, PostgresUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BenchMismatch as mismatch:
        print(f"error: {mismatch}", file=sys.stderr)
        _finish(mismatch.results, args.out)
        return 1
    _finish(results, args.out)
    return 1 if results["mismatches"] else 0


def cmd_claim_load(args: argparse.Namespace) -> int:
    from workbench.comparison.postgres import PostgresUnavailable
    from workbench.overhttp import claims

    if unknown := set(args.services) - set(claims.SERVICES):
        print(f"error: --services: unknown {sorted(unknown)}; choose from {','.join(claims.SERVICES)}", file=sys.stderr)
        return 2
    plan = claims.Plan(hosts=args.hosts, boots=args.boots, workers=args.workers,
                       graph_workers=tuple(args.graph_workers), max_retries=args.max_retries,
                       seconds=args.max_seconds, services=tuple(args.services), warm_up_boots=args.warm_up_boots)
    try:
        results = claims.run(args.clients, plan)
    except (ValueError, PostgresUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    _finish(results, args.out)
    return 0 if all(r["checks"]["ok"] for r in results["runs"]) else 1
