"""The ``workbench`` command: a thin layer over the package.

Every command that needs Neo4j uses ``NEO4J_URI`` if set, else the local
server (``workbench server start``). Expected failures print one clear
message and exit non-zero; no stack traces.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import neo4j

from workbench import bench
from workbench.graphdb import server
from workbench.api import serve
from workbench.comparison import bench_store, placement_serve
from workbench.overhttp import cli as overhttp_cli
from workbench.conformance import run as conformance
from workbench.graphdb.db import Graph, Neo4jUnavailable
from workbench.engine import allocations, candidates, loader, providers, quotas, usages, why_not
from workbench.engine.errors import PlacementError
from workbench.engine.providers import format_trees, provider_trees
from workbench.scenario import ScenarioError, load_file

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "scenarios" / "demo.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _sigterm_unwinds():
            return args.func(args) or 0
    except (Neo4jUnavailable, ScenarioError, loader.LoadConflict) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except PlacementError as error:
        if getattr(args, "json", False):
            print(json.dumps(error.body(), indent=2))
        else:
            print(f"error ({error.status} {error.code}): {error.detail}", file=sys.stderr)
        return 1
    except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as error:
        # E.g. the server went away mid-command; a load is undone on the next connect.
        print(f"error: Neo4j failed: {error}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _sigterm_unwinds():
    """While a command runs, `kill` (SIGTERM) unwinds it as Ctrl-C does.

    Python's default for SIGTERM is to die on the spot, which would orphan what a command
    started inside a ``with`` block: the throwaway PostgreSQL and MariaDB servers of
    ``bench --postgres/--mariadb``, the services of ``bench-http``, the busy-core process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="OpenStack Placement on Neo4j: a teaching and demo workbench."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    server.add_server_parser(sub)
    bench.add_bench_parser(sub)
    bench_store.add_parser(sub)
    serve.add_serve_parser(sub)
    placement_serve.add_placement_serve_parser(sub)
    overhttp_cli.add_parsers(sub)
    conformance.add_conformance_parser(sub)

    p = sub.add_parser("lab", help="start Neo4j, load the demo cloud and open JupyterLab on the notebooks")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--port", type=int, default=8888, help="JupyterLab port (default 8888)")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("load", help="load a scenario file (YAML) into Neo4j: all of it or nothing")
    p.add_argument("file", type=Path)
    p.add_argument("--reset", action="store_true", help="empty the database first")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("providers", help="print the provider trees with used/capacity per class")
    p.add_argument("--inventories", action="store_true",
                   help="every inventory's total, reserved, min_unit, max_unit, step_size and allocation_ratio, "
                   "and which trees each sharing provider serves through which aggregate")
    p.add_argument("--aggregates", action="store_true", help="aggregate names beside their UUIDs, with members")
    p.set_defaults(func=cmd_providers)

    p = sub.add_parser("render", help="draw the provider trees (optionally a candidate) to a standalone HTML file")
    p.add_argument("scenario", nargs="?", type=Path, help="load this scenario first (replaces the database)")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write (works offline)")
    p.add_argument("--candidate", metavar="QUERY", help="highlight a candidate for this Placement query")
    p.add_argument("--pick", type=int, default=0, help="which candidate, counting from 0 (default 0)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("candidates", help="allocation candidates for a Placement query string")
    p.add_argument("query", help="e.g. 'resources=VCPU:2,MEMORY_MB:2048&required=HW_CPU_X86_AVX2' "
                   "(member_of also takes aggregate names, resolved to their UUIDs)")
    p.add_argument("--limit", type=int, help="at most N candidates (Placement's limit=N)")
    p.add_argument("--json", action="store_true", help="print Placement's 1.39 response body")
    p.add_argument("--explain", action="store_true", help="print the Cypher queries (and parameters) used")
    p.add_argument("--why-not", action="append", default=[], metavar="PROVIDER",
                   help="why this provider (name or UUID) is in no candidate, rule by rule (repeatable; "
                   "with --json: {\"why_not\": [...], \"funnel\": ...} instead of Placement's body)")
    p.add_argument("--project", help="drop the candidates this project's quota cannot afford")
    p.add_argument("--user", help="with --project: the user's own quota too")
    p.add_argument("--consumer-type", default="INSTANCE", help="with --project: the consumer type (INSTANCE)")
    p.set_defaults(func=cmd_candidates)

    p = sub.add_parser("claim", help="claim a candidate for a new consumer")
    p.add_argument("consumer", help="consumer UUID")
    p.add_argument("query")
    p.add_argument("--project", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--consumer-type", default="INSTANCE")
    p.add_argument("--pick", type=int, default=0, help="which candidate, counting from 0 (default 0)")
    p.set_defaults(func=cmd_claim)

    p = sub.add_parser("claim-node", help="claim everything a provider (bare-metal node) has left, for one consumer")
    p.add_argument("provider", help="provider name or UUID")
    p.add_argument("consumer", help="consumer UUID")
    p.add_argument("--project", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--consumer-type", default="INSTANCE")
    p.add_argument("--subtree", action="store_true", help="also everything below the provider")
    p.add_argument("--generation", type=int, help="refuse if the provider's generation is no longer this")
    p.set_defaults(func=cmd_claim_node)

    p = sub.add_parser("quota", help="quota limits per project (and user): set or show with usage and headroom")
    quota = p.add_subparsers(dest="quota_command", metavar="ACTION", required=True)
    q = quota.add_parser("set", help="set limits, e.g. `quota set --project demo VCPU=40 MEMORY_MB=102400`")
    q.add_argument("--project", required=True)
    q.add_argument("--user")
    q.add_argument("--consumer-type")
    q.add_argument("limits", nargs="+", metavar="CLASS=N")
    q.set_defaults(func=cmd_quota_set)
    q = quota.add_parser("show", help="limits, usage and headroom")
    q.add_argument("--project")
    q.set_defaults(func=cmd_quota_show)

    p = sub.add_parser("allocations", help="a consumer's allocations, provider names beside UUIDs")
    p.add_argument("consumer")
    p.add_argument("--json", action="store_true", help="print Placement's GET /allocations/{uuid} body")
    p.set_defaults(func=cmd_allocations)

    p = sub.add_parser("release", help="release all of a consumer's allocations")
    p.add_argument("consumer")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("usages", help="usage of a project (and user), by consumer type")
    p.add_argument("--project", required=True)
    p.add_argument("--user")
    p.set_defaults(func=cmd_usages)
    return parser


def _graph() -> Graph:
    return Graph.connect()


def cmd_load(args) -> int:
    scenario = load_file(args.file)
    with _graph() as graph:
        result = loader.load(graph, scenario, reset=args.reset)
    print(
        f"loaded {result['scenario']}: {result['providers']} providers, {result['consumers']} consumers "
        f"in {result['seconds']:.2f} s"
    )
    return 0


def cmd_providers(args) -> int:
    from workbench import report

    with _graph() as graph:
        if args.inventories:
            frame = report.inventories_frame(providers.inventory_details(graph))
            print(report.left_text(frame, "provider") if len(frame) else "(no inventories)")
            sharing = report.sharing_lines(providers.sharing_serves(graph))
            print("\n".join(["", "sharing providers:"] + (sharing or ["(none)"])))
        if args.aggregates:
            frame = report.aggregates_frame(providers.aggregates(graph))
            print(frame.to_string(index=False) if len(frame) else "(no aggregates)")
        if not (args.inventories or args.aggregates):
            print(format_trees(provider_trees(graph)))
    return 0


def cmd_render(args) -> int:
    from workbench.viz import write_tree

    if args.scenario:
        cmd_load(argparse.Namespace(file=args.scenario, reset=True))
    with _graph() as graph:
        path = write_tree(args.out, graph, args.candidate, pick=args.pick)
    print(f"wrote {path} (self-contained: opens offline in any browser)")
    return 0


def cmd_candidates(args) -> int:
    query = args.query + (f"&limit={args.limit}" if args.limit is not None else "")
    with _graph() as graph:
        query, notes = providers.resolve_aggregate_names(graph, query)
        for note in notes:  # on stderr: --json stays Placement's body
            print(f"note: {note}", file=sys.stderr)
        trace: list = []
        body = candidates.find(graph, query, trace)
        ran_dry = not body["allocation_requests"]  # the search itself, before any quota drops candidates
        if args.project:
            body, dropped = quotas.affordable(graph, body, args.project, args.user, args.consumer_type)
            for reason, count in sorted(dropped.items()):
                print(f"dropped {count} candidate(s): {reason}", file=sys.stderr)
        # Why not: each provider asked about, and where a request with no candidates ran dry.
        explanations = why_not.why_not_each(graph, query, args.why_not) if args.why_not else []
        dry = why_not.funnel(graph, query) if ran_dry and (explanations or not args.json) else None
        if args.json and explanations:
            out = {"why_not": [e.to_dict() for e in explanations]}
            if dry:
                out["funnel"] = dry.to_dict()
            print(json.dumps(out, indent=2, sort_keys=True))
        elif args.json:
            print(json.dumps(body, indent=2, sort_keys=True))
        else:
            from workbench.report import candidates_frame, provider_names

            frame = candidates_frame(body, provider_names(graph))
            print(f"{len(frame)} allocation candidate(s) for {query}")
            if len(frame):
                print(frame.to_string())
            if dry:
                print("\n".join(["where the search ran dry:"] + dry.lines()))
            for explanation in explanations:
                print("\n" + str(explanation))
        if args.explain:
            _print_trace(trace)
            if explanations:
                print("\n// ---- the queries of the why-not explanations ----")
                _print_trace(explanations[0].trace)
            if dry:
                print("\n// ---- the queries of the funnel ----")
                _print_trace(dry.trace)
    return 0


def _print_trace(trace) -> None:
    for step in trace:
        print(f"\n// {step.name}: {step.rows} row(s); parameters {json.dumps(step.parameters)}")
        print(step.text)


def cmd_claim(args) -> int:
    with _graph() as graph:
        chosen = allocations.claim(
            graph, args.consumer, args.query, args.project, args.user, args.consumer_type, args.pick
        )
    total = sum(n for resources in chosen.values() for n in resources.values())
    print(f"claimed candidate {args.pick} for consumer {args.consumer}: {len(chosen)} provider(s), {total} unit(s)")
    print(json.dumps(chosen, indent=2, sort_keys=True))
    return 0


def cmd_claim_node(args) -> int:
    with _graph() as graph:
        taken = allocations.claim_whole_provider(
            graph, args.provider, args.consumer, args.project, args.user, args.consumer_type, args.subtree,
            args.generation,
        )
    print(f"consumer {args.consumer} now holds all that was free on {args.provider}:")
    print(json.dumps(taken, indent=2, sort_keys=True))
    return 0


def cmd_quota_set(args) -> int:
    limits = {}
    for item in args.limits:
        rc, _, amount = item.partition("=")
        if not re.fullmatch("[0-9]+", amount):  # not str.isdigit(): it takes '²', which int() refuses
            print(f"error: limits are CLASS=N with N a whole number, got {item!r}", file=sys.stderr)
            return 2
        limits[rc] = int(amount)
    with _graph() as graph:
        quotas.set_limits(graph, args.project, limits, args.user, args.consumer_type)
    print(f"set {len(limits)} limit(s) for project {args.project}" + (f", user {args.user}" if args.user else ""))
    return 0


def cmd_quota_show(args) -> int:
    import pandas as pd

    with _graph() as graph:
        report = quotas.usage_report(graph, args.project)
    if not report:
        print("no quota limits set" + (f" for project {args.project}" if args.project else ""))
    else:
        print(pd.DataFrame(report).to_string(index=False))
    return 0


def cmd_allocations(args) -> int:
    from workbench.report import allocations_frame, provider_names

    with _graph() as graph:
        body = allocations.get_allocations(graph, args.consumer)
        if args.json:
            print(json.dumps(body, indent=2, sort_keys=True))
            return 0
        frame = allocations_frame(body, provider_names(graph))
    if not len(frame):
        print(f"consumer {args.consumer} holds no allocations")
        return 0
    owner = f" (project {body['project_id']}, user {body['user_id']})" if body.get("project_id") else ""
    print(f"consumer {args.consumer}{owner}:")
    print(frame.to_string(index=False))
    return 0


def cmd_release(args) -> int:
    with _graph() as graph:
        allocations.delete_allocations(graph, args.consumer)
    print(f"released all allocations of consumer {args.consumer}")
    return 0


def cmd_usages(args) -> int:
    with _graph() as graph:
        print(json.dumps(usages.usages_by_consumer_type(graph, args.project, args.user), indent=2, sort_keys=True))
    return 0


def cmd_lab(args) -> int:
    """The quick start: a running Neo4j with the demo cloud, and JupyterLab on the index."""
    local = server.LocalNeo4j.from_env()
    if not os.environ.get("NEO4J_URI"):
        print(local.start().describe(), file=sys.stderr)
    cmd_load(argparse.Namespace(file=DEMO, reset=True))
    command = [
        sys.executable, "-m", "jupyter", "lab", f"--port={args.port}", "--ServerApp.ip=127.0.0.1",
        str(ROOT / "notebooks" / "00-index.ipynb"),
    ]
    if args.no_browser:
        command.append("--no-browser")
    if os.geteuid() == 0:  # Jupyter refuses root unless told; a fresh VM or container is often root
        command.append("--allow-root")
    print("starting JupyterLab (Ctrl-C to stop; `workbench server stop` stops Neo4j)", file=sys.stderr)
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
