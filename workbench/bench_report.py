"""Write ``workbench bench`` results: JSON, a Markdown report and a PNG plot.

The results dict is the one :func:`workbench.bench.run` returns. The plot
draws, per request shape, the median latency (and p95, thinner) against the
number of compute nodes for both engines, on log-log axes.
"""

from __future__ import annotations

import json
from pathlib import Path

GRAPH_LABEL = "graph (Neo4j)"
PLACEMENT_LABEL = "Placement (SQLite, in process)"
POSTGRES_LABEL = "Placement (PostgreSQL, loopback)"
MARIADB_LABEL = "Placement (MariaDB, loopback)"
RECOMMENDED_LABEL = "Placement (recommended settings)"
# Placement on a database server, as run with --postgres / --mariadb: result key, name.
SERVER_DATABASES = (("placement_postgresql", "PostgreSQL"), ("placement_mariadb", "MariaDB"))


def write(results: dict, json_path: Path | None = None, markdown_path: Path | None = None,
          plot_path: Path | None = None) -> list[Path]:
    written = []
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        written.append(json_path)
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(markdown(results))
        written.append(markdown_path)
    if plot_path:
        plot_path.parent.mkdir(parents=True, exist_ok=True)
        plot(results, plot_path)
        written.append(plot_path)
    return written


def _result_key(r: dict) -> tuple:
    # Rows written before fills and regimes existed: an empty cloud, the collector as each engine left it.
    return r["compute_nodes"], r["cloud"], r.get("fill", "0"), r["request"], r.get("gc")


def _load_key(r: dict) -> tuple:
    return r["compute_nodes"], r["cloud"], r.get("fill", "0")


def merge(runs: list[dict]) -> dict:
    """Several runs' results as one (the machine of the first; every run's date kept)."""
    if not runs:
        raise ValueError("nothing to merge")
    merged = json.loads(json.dumps(runs[0]))
    merged["machine"]["runs"] = [
        {"date": r["machine"]["date"], "repeat": r["settings"]["repeat"], "workbench": r["machine"].get("workbench"),
         "load_average_at_start": r["machine"].get("load_average_at_start"),
         "load_average_at_end": r["machine"].get("load_average_at_end")}
        for r in runs
    ]
    for other in runs[1:]:
        for key in ("results", "load", "skipped", "mismatches"):
            merged[key] += other.get(key, [])
        # A later run of the same request (or load) replaces the earlier one.
        for key, identity in (("results", _result_key), ("skipped", _result_key), ("load", _load_key)):
            merged[key] = list({identity(r): r for r in merged[key]}.values())
        known = {r["name"] for r in merged["requests"]}
        merged["requests"] += [r for r in other["requests"] if r["name"] not in known]
        for key in ("python_peak_rss_mb", "neo4j_peak_rss_mb", "neo4j_heap_used_max_sampled_mb"):
            values = [m.get(key) for m in (merged.get("memory") or {}, other.get("memory") or {}) if m.get(key)]
            merged.setdefault("memory", {})[key] = max(values) if values else None
    order = {r["name"]: i for i, r in enumerate(merged["requests"])}
    merged["results"].sort(key=lambda r: (r["compute_nodes"], order.get(r["request"], 99), r.get("fill", "0"),
                                          r.get("gc") or ""))
    merged["load"].sort(key=lambda r: (r["compute_nodes"], r["cloud"], r.get("fill", "0")))
    return merged


# -- Markdown --------------------------------------------------------------------------------


def _ms(value) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _ratio(graph_ms, other_ms) -> str:
    """graph / other, from the latencies themselves (a stored ratio is rounded)."""
    if not graph_ms or not other_ms:
        return "–"
    value = graph_ms / other_ms
    shown = f"{value:.2f}" if value >= 0.01 else f"{value:.1g}"
    if value < 1:
        return f"{shown} (graph {1 / value:,.1f}× faster)"
    return f"{shown} (graph {value:.1f}× slower)"


def _plain_ratio(value) -> str:
    return f"{value:.2f}" if value else "–"


def markdown(results: dict) -> str:
    m = results["machine"]
    s = results["settings"]
    rtt = m.get("bolt_round_trip_ms") or {}
    code = m.get("workbench") or {}
    lines = [
        "# Allocation candidates: graph engine (Neo4j) vs OpenStack Placement (in process, SQLite"
        + "".join(f"; also on {name}" for key, name in SERVER_DATABASES if s.get(key)) + ")",
        "",
        f"- **Date:** {m['date']}" + (
            "; runs merged: " + ", ".join(
                f"{r['date']} (repeat {r['repeat']}, commit {(r.get('workbench') or {}).get('commit', '?')})"
                for r in m["runs"]
            )
            if m.get("runs") else ""
        ),
        f"- **Machine:** {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB RAM; {m['os']}; "
        f"load average at start {m.get('load_average_at_start')}, at end {m.get('load_average_at_end')} "
        "(about 1 is the benchmark alone on this 2-core VM, more means other work ran; each row's quartiles "
        "show its spread)",
        f"- **Software:** Python {m['python']}; Neo4j {m['neo4j_version']} ({m['neo4j_uri']}, "
        f"{_settings(m.get('neo4j_settings'))}), neo4j driver {m['neo4j_driver']} "
        f"(Rust extension {m.get('neo4j_rust_ext', '?') or 'not installed'}); "
        f"openstack-placement {m['placement_version']}, SQLAlchemy {m.get('sqlalchemy')}",
        "- **Bolt round trip** (`RETURN 1` through `Graph.read`, in its own transaction: the fixed cost of a "
        "Cypher call; a search's calls share one transaction and cost less): "
        f"median {rtt.get('p50')} ms, min {rtt.get('min')} ms",
        f"- **Placement settings:** {_settings(s.get('placement'))}",
        "- **Placement's recommended settings for wide trees** (the `recommended` columns; timed only where they "
        "cannot change the answer: `max_allocation_candidates` cuts an answer longer than itself): "
        + "; ".join(f"`[{group}] {name} = {value}`" for group, options in (s.get("placement_recommended") or {}).items()
                    for name, value in options.items()),
        f"- **Cycle collector:** {s.get('gc', 'not recorded: the graph engine paused it for its search only')}",
        f"- **Clouds in use:** fills {', '.join(s.get('fills') or ['0'])} (see below)"
        + ("; **a second process kept one core busy while timing** (`--busy`)" if s.get("busy") else ""),
        f"- **Code:** workbench commit {code.get('commit', '?')}; uncommitted changes in workbench/engine: "
        f"{', '.join(code['engine_uncommitted_changes']) if code.get('engine_uncommitted_changes') else 'none'}",
        f"- **Timed:** "
        + (f"Neo4j first warmed up ({s['neo4j_warm_up_s']} s of every request on 20-host clouds: a fresh JVM "
           "runs the query code interpreted at first); then per request " if s.get("neo4j_warm_up_s") else "")
        + f"1 warm-up, then {s['repeat']} runs per engine (per-row `repeat` below if runs were merged). "
        f"Graph: {s['graph_timed']}. Placement: {s['placement_timed']}. Placement's SQL: "
        f"{s.get('placement_sql', 'not measured')}. Before timing, both engines' answers "
        "were compared (`workbench.comparison.parity.compare`; with `limit`: same count, each candidate valid).",
        f"- **Memory:** {s['memory']}.",
        "",
        "## Request shapes",
        "",
        "| request | cloud | query | what it asks |",
        "|---|---|---|---|",
    ]
    for r in results["requests"]:
        lines.append(f"| {r['name']} | {r['cloud']} | `{r['query']}` | {r['about']} |")
    lines += [
        "",
        "Clouds (`workbench.synthetic`): **flat** one provider per host; **numa** host + 2 NUMA nodes, each "
        "with a PF (5 providers per host); **shared** hosts without disk, 100 per aggregate with one sharing "
        "DISK_GB pool; **wide** host + 8 one-unit VGPU children (9 providers per host). Every tenth host has "
        "CUSTOM_LEGACY. `{cn00000}` is the first host's UUID. **Fill** (existing allocations): `0` an empty "
        "cloud; a fraction, that share of the hosts full (every inventory of the tree, and the host's share of "
        "its disk pool, used to capacity by a few instances), spread over the cloud, the rest empty; "
        "`adversarial`, 70 % of the hosts full, those first in UUID order (the order the graph pages through "
        "trees with `limit`).",
    ]
    lines += _latency_section(results)
    lines += _target_section(results)
    lines += _split_section(results)
    lines += [
        "",
        "## Where the graph engine's time goes (traced runs)",
        "",
        "Of up to 3 traced graph runs, the one with the median total (ms). `Cypher` is the wall time of the "
        "driver's `execute_query` calls; during them, `driver CPU` is this Python process's CPU time (the "
        "driver receiving and decoding the records into dicts) and `Neo4j CPU` the JVM's (planning, executing, "
        "serialising). `Python` is the rest of the search: parsing the request, combining the groups, building "
        "the summaries; `JSON` is `json.dumps` of the body.",
        "",
        "| compute nodes | fill | request | total | Cypher | driver CPU | Neo4j CPU | Python | JSON "
        "| largest query: ms (driver / Neo4j CPU ms), rows | response size graph / Placement |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in _one_per_request(results["results"]):
        b = r["graph_breakdown"]
        top = max(b["queries"].items(), key=lambda kv: kv[1]["ms"]) if b["queries"] else None
        top_text = (
            f"{top[0]}: {_ms(top[1]['ms'])} ({_ms(top[1].get('client_cpu_ms'))} / "
            f"{_ms(top[1].get('server_cpu_ms'))}), {top[1]['rows']:,} rows"
            if top else "–"
        )
        lines.append(
            f"| {r['compute_nodes']:,} | {r.get('fill', '0')} | {r['request']} | {_ms(b['find_ms'] + b['json_ms'])} "
            f"| {_ms(b['cypher_ms'])} "
            f"| {_ms(b.get('cypher_client_cpu_ms'))} | {_ms(b.get('cypher_server_cpu_ms'))} "
            f"| {_ms(b['python_ms'])} | {_ms(b['json_ms'])} | {top_text} "
            f"| {_kb(r['graph']['response_bytes'])} / {_kb(r['placement_sqlite']['response_bytes'])} |"
        )
    lines += _server_sections(results)
    lines += [
        "",
        "## Loading",
        "",
        "Graph: `workbench.engine.loader.load(reset=True)` (batched UNWIND over Bolt, transactions of at most "
        "10,000 providers, emptying the database first). Placement: `PlacementOracle.load_bulk`, Placement's "
        "object layer (the calls its REST handlers make, without HTTP); for small clouds also the REST API "
        "(`PlacementOracle.load`, ~2–4 calls per provider); consumers through `POST /allocations`, many a call.",
        "",
        "| compute nodes | cloud | fill | providers | consumers | graph (s) | Placement object layer (s) "
        "| Placement REST (s) | Python RSS peak (MB) | Neo4j RSS now / peak (MB) | Neo4j heap used (MB) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in results["load"]:
        mem = e.get("memory") or {}
        lines.append(
            f"| {e['compute_nodes']:,} | {e['cloud']} | {e.get('fill', '0')} | {e['providers']:,} "
            f"| {e.get('consumers', 0):,} | {e['graph_s']} | {e['placement_s']} "
            f"| {e['placement_rest_s'] if e['placement_rest_s'] is not None else '–'} "
            f"| {mem.get('python_peak_rss_mb', '–')} "
            f"| {mem.get('neo4j_rss_mb', '–')} / {mem.get('neo4j_peak_rss_mb', '–')} "
            f"| {mem.get('neo4j_heap_used_mb', '–')} of {mem.get('neo4j_heap_max_mb', '–')} |"
        )
    memory = results.get("memory") or {}
    lines += [
        "",
        f"Peaks over the run: Python process {memory.get('python_peak_rss_mb')} MB; Neo4j JVM RSS "
        f"{memory.get('neo4j_peak_rss_mb')} MB; Neo4j heap used (sampled after each cloud) "
        f"{memory.get('neo4j_heap_used_max_sampled_mb')} MB.",
    ]
    if results.get("skipped"):
        lines += ["", "## Skipped", "", "| compute nodes | fill | request | reason |", "|---:|---|---|---|"]
        for k in results["skipped"]:
            lines.append(f"| {k['compute_nodes']:,} | {k.get('fill', '0')} | {k['request']} | {k['reason']} |")
    lines += ["", "## Disagreements", ""]
    if results.get("mismatches"):
        for k in results["mismatches"]:
            lines += [f"- **{k['compute_nodes']:,} {k['cloud']} fill {k.get('fill', '0')} {k['request']}** `{k['query']}`:",
                      "", "```", k["difference"], "```"]
    else:
        lines.append("None: on every request timed, both engines gave the same answer.")
    return "\n".join(lines) + "\n"


def _row_key(r: dict) -> tuple:
    return r["compute_nodes"], r["cloud"], r.get("fill", "0"), r["request"]


def _one_per_request(rows: list[dict]) -> list[dict]:
    """The first row of each (size, cloud, fill, request): what does not depend on the regime."""
    return list({_row_key(r): r for r in reversed(rows)}.values())[::-1]


def _regimes(results: dict) -> list:
    found = []
    for r in results["results"]:
        if r.get("gc") not in found:
            found.append(r.get("gc"))
    return found


def _median_spread(stats: dict | None) -> str:
    """The median with its interquartile range (rows without quartiles: min–max)."""
    if not stats:
        return "–"
    low, high = stats.get("p25_ms", stats.get("min_ms")), stats.get("p75_ms", stats.get("max_ms"))
    return f"{_ms(stats['p50_ms'])} ({_ms(low)}–{_ms(high)})"


def _placement_best_ms(r: dict) -> float:
    """Placement's p50 at its faster setting for this row (defaults, or recommended where timed)."""
    return min(t["p50_ms"] for t in (r["placement_sqlite"], r.get("placement_sqlite_recommended")) if t)


def _latency_section(results: dict) -> list[str]:
    """Wall time, the cycle-collector regimes side by side."""
    regimes = _regimes(results)
    by_key = {(_row_key(r), r.get("gc")): r for r in results["results"]}
    names = {"on": "collector on", "paused": "collector paused", None: "graph paused, Placement on (old rows)"}
    header = "| compute nodes | cloud | fill | request | candidates "
    rule = "|---:|---|---|---|---:"
    for regime in regimes:
        label = names.get(regime, regime)
        header += (f"| graph ({label}) | Placement ({label}) | Placement recommended ({label}) "
                   f"| graph ÷ Placement's best ({label}) ")
        rule += "|---:|---:|---:|---"
    lines = [
        "",
        "## Latency (ms)",
        "",
        "Wall time per request: the median of the runs with, in brackets, the interquartile range (p25–p75; "
        "minimum, maximum, p95 and every run are in the JSON). Each cycle-collector regime side by side: "
        "*on*, the collector runs during both engines' calls; *paused*, it is paused around each engine's "
        "call. *Placement* is at its defaults, *recommended* at its recommended settings for wide trees "
        "(above; – where they would cut the answer); the ratio is to the faster of the two.",
        "",
        header + "|",
        rule + "|",
    ]
    for first in _one_per_request(results["results"]):
        line = (f"| {first['compute_nodes']:,} | {first['cloud']} | {first.get('fill', '0')} | {first['request']} "
                f"| {first['candidates']:,} ")
        for regime in regimes:
            r = by_key.get((_row_key(first), regime))
            if r is None:
                line += "| – | – | – | – "
                continue
            best = _placement_best_ms(r)
            line += (f"| {_median_spread(r['graph'])} | {_median_spread(r['placement_sqlite'])} "
                     f"| {_median_spread(r.get('placement_sqlite_recommended'))} "
                     f"| {_ratio(r['graph']['p50_ms'], best)} ")
        lines.append(line + "|")
    return lines


# The target: the graph's p50 at most half of Placement's best p50, for every request shape.
TARGET_RATIO = 0.5


def target_summary(results: dict) -> list[dict]:
    """Per size and request shape, how its ratios to Placement's best stand against TARGET_RATIO.

    A shape meets the target only if every cell (fill x collector regime) does.
    """
    shapes: dict[tuple, list[dict]] = {}
    for r in results["results"]:
        if r.get("ratio_p50_best") is not None:
            shapes.setdefault((r["compute_nodes"], r["request"]), []).append(r)
    summary = []
    for (size, request), rows in shapes.items():
        ratios = [r["ratio_p50_best"] for r in rows]
        worst = max(rows, key=lambda r: r["ratio_p50_best"])
        split = worst.get("graph_breakdown") or {}
        summary.append({
            "compute_nodes": size, "request": request, "cells": len(rows),
            "cells_met": sum(ratio <= TARGET_RATIO for ratio in ratios),
            "best": min(ratios), "worst": max(ratios),
            "worst_at": f"fill {worst.get('fill', '0')}, collector {worst.get('gc') or 'as left'}",
            "met": max(ratios) <= TARGET_RATIO,
            # Where the worst cell's time goes: the time the target allows, against the graph's
            # Cypher and the graph's own Python (from the traced runs, which cost a little more).
            "budget_ms": round(TARGET_RATIO * _placement_best_ms(worst), 2),
            "cypher_ms": split.get("cypher_ms"),
            "python_json_ms": round(split["python_ms"] + split["json_ms"], 2) if split else None,
        })
    return summary


def _target_section(results: dict) -> list[str]:
    summary = target_summary(results)
    if not summary:
        return []
    lines = [
        "",
        f"## The target: graph p50 at most {TARGET_RATIO} × Placement's best",
        "",
        "Per request shape, the graph's p50 divided by Placement's best p50 (defaults or recommended settings, "
        "whichever was faster) over every fill and cycle-collector regime of this run; a shape meets the "
        "target only if all its cells do. Where a shape misses, for its worst cell: the time the target "
        "allows the graph (half of Placement's best p50), and the graph's time in Cypher and in its own "
        "Python and JSON (from the traced runs below, which read the JVM's CPU clocks around each query and "
        "so run a few ms slower). Where Cypher alone takes more than the target allows, no work on the "
        "Python side can meet it; where both together take less, the worst cell lost its time elsewhere "
        "(the cycle collector, when it was on, or a slow run).",
        "",
        "| compute nodes | request | cells at or under the target | best ratio | worst ratio (where) "
        "| target allows ms | graph Cypher ms | graph Python + JSON ms | target |",
        "|---:|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['compute_nodes']:,} | {s['request']} | {s['cells_met']} of {s['cells']} | {_plain_ratio(s['best'])} "
            f"| {_plain_ratio(s['worst'])} ({s['worst_at']}) "
            + ("| | | | met |" if s["met"] else
               f"| {_ms(s['budget_ms'])} | {_ms(s['cypher_ms'])} | {_ms(s['python_json_ms'])} | **missed** |")
        )
    met = sum(s["met"] for s in summary)
    lines += ["", f"Met for {met} of {len(summary)} request shapes." + (
        " Missed: " + ", ".join(f"{s['request']} at {s['compute_nodes']:,}" for s in summary if not s["met"]) + "."
        if met < len(summary) else "")]
    return lines


def _split_section(results: dict) -> list[str]:
    """Per row: CPU, Placement's SQL vs Python, memory, collections, the busy core."""
    lines = [
        "",
        "## CPU, Placement's SQL and Python, memory",
        "",
        "CPU time per request: for the graph the median over the runs of the Python client's plus the Neo4j "
        "JVM's CPU time (in brackets the median of each part on its own, so the parts need not add up), for "
        "Placement this process's (it runs in process). On a shared machine the CPU figures are the steadier "
        "comparison. Placement's *SQL* is the median time inside the database driver's `execute` "
        "(SQLAlchemy events; on SQLite a lower bound), *Python* the median of the rest. *Peak Python MB*: "
        "the most Python memory allocated during one call (tracemalloc; the JVM's memory is under Loading). "
        "*Collections*: cycle collections during the timed runs (graph / Placement).",
        "",
        "| compute nodes | fill | request | gc | CPU graph (Python + Neo4j) | CPU Placement | CPU ratio "
        "| Placement SQL / Python (statements) | peak Python MB graph / Placement | collections | busy core "
        "| runs |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["results"]:
        g, p = r["graph"], r["placement_sqlite"]
        graph_cpu = (
            f"{_ms(g['cpu_p50_ms'])} ({_ms(g['client_cpu_p50_ms'])} + {_ms(g['server_cpu_p50_ms'])})"
            if g.get("cpu_p50_ms") is not None else "–"
        )
        split = (f"{_ms(p['sql_p50_ms'])} / {_ms(p['python_p50_ms'])} ({p['sql_statements']})"
                 if p.get("sql_p50_ms") is not None else "–")
        busy = r.get("busy") or {}
        lines.append(
            f"| {r['compute_nodes']:,} | {r.get('fill', '0')} | {r['request']} | {r.get('gc') or '–'} | {graph_cpu} "
            f"| {_ms(p.get('cpu_p50_ms'))} | {_plain_ratio(r.get('ratio_cpu_p50'))} | {split} "
            f"| {g.get('peak_python_mb', '–')} / {p.get('peak_python_mb', '–')} "
            f"| {g.get('gc_collections', '–')} / {p.get('gc_collections', '–')} "
            f"| {busy.get('cpu_share', '–') if busy else '–'} | {r.get('repeat', results['settings']['repeat'])} |"
        )
    return lines


def _server_sections(results: dict) -> list[str]:
    """Placement on PostgreSQL / MariaDB, when the run had them (``--postgres``, ``--mariadb``)."""
    lines: list[str] = []
    for key, name in SERVER_DATABASES:
        timed = [r for r in results["results"] if r.get(key)]
        if not timed:
            continue
        lines += [
            "",
            f"## Placement on {name}",
            "",
            f"The same requests of the same Placement with its database on {name} (Debian's package, a "
            "throwaway server on loopback with default settings), as in production; its answers were checked "
            f"against the graph's too. Wall time; *SQL* is the time inside the driver's `execute` (which reads "
            f"the whole result), the rest is Placement's Python. {name}'s CPU is in its own processes.",
            "",
            f"| compute nodes | fill | request | gc | candidates | graph p50 | Placement SQLite p50 | Placement {name} "
            f"p50 (p25–p75) | {name}: SQL / Python | graph/{name} p50 |",
            "|---:|---|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in timed:
            db = r[key]
            split = f"{_ms(db['sql_p50_ms'])} / {_ms(db['python_p50_ms'])}" if db.get("sql_p50_ms") is not None else "–"
            lines.append(
                f"| {r['compute_nodes']:,} | {r.get('fill', '0')} | {r['request']} | {r.get('gc') or '–'} "
                f"| {r['candidates']:,} | {_ms(r['graph']['p50_ms'])} | {_ms(r['placement_sqlite']['p50_ms'])} "
                f"| {_median_spread(db)} | {split} | {_ratio(r['graph']['p50_ms'], db['p50_ms'])} |"
            )
        loads = [e for e in results["load"] if e.get(f"{key}_s") is not None]
        if loads:
            lines += ["", f"Loading Placement on {name} (object layer): " + "; ".join(
                f"{e['compute_nodes']:,} {e['cloud']} fill {e.get('fill', '0')} {e[f'{key}_s']} s" for e in loads) + "."]
    return lines


def _settings(values: dict | None) -> str:
    if not values:
        return "–"
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _kb(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / 1024:,.0f} KB" if n >= 1024 else f"{n} B"


# -- the plot ----------------------------------------------------------------------------------


def plot(results: dict, path: Path, sizes: list[int] | None = None) -> None:
    """One chart per cloud size (``sizes``: only these), readable from the back of
    a room: each request shape a row of bars (p50 latency, log scale), the
    graph's bar labelled with its ratio to Placement's. A notebook shows one size
    per image, at full width (``sizes=[n]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    order = [r["name"] for r in results["requests"]]
    results = dict(results, results=_plotted(results["results"]))
    sizes = sorted(sizes or {r["compute_nodes"] for r in results["results"]}) or [0]
    engines = [
        (key, label, colour)
        for key, label, colour in (
            ("graph", GRAPH_LABEL, "#1f5fa0"),
            ("placement_sqlite", PLACEMENT_LABEL, "#c0392b"),
            ("placement_sqlite_recommended", RECOMMENDED_LABEL, "#e8a09a"),
            ("placement_postgresql", POSTGRES_LABEL, "#2b8a3e"),
            ("placement_mariadb", MARIADB_LABEL, "#b7791f"),
        )
        if any(r.get(key) for r in results["results"])
    ]
    columns = min(2, len(sizes))
    rows = (len(sizes) + columns - 1) // columns
    most = max((sum(r["compute_nodes"] == n for r in results["results"]) for n in sizes), default=1)
    fig, axes = plt.subplots(
        rows, columns, figsize=(11 * columns, (0.26 * len(engines) * most + 1.2) * rows + 1.3), squeeze=False
    )
    bar = 0.8 / max(len(engines), 1)
    for ax, size in zip(axes.flat, sizes):
        points = sorted(
            (r for r in results["results"] if r["compute_nodes"] == size),
            key=lambda r: (order.index(r["request"]) if r["request"] in order else len(order), r.get("fill", "0")),
        )
        for i, (key, label, colour) in enumerate(engines):
            ys = [row - 0.4 + bar * (i + 0.5) for row, r in enumerate(points) if r.get(key)]
            p50 = [r[key]["p50_ms"] for r in points if r.get(key)]
            ax.barh(ys, p50, height=bar * 0.9, color=colour, label=label)
        for row, r in enumerate(points):
            if r.get("graph") and r.get("ratio_p50") is not None:
                ax.text(r["graph"]["p50_ms"] * 1.08, row - 0.4 + bar / 2, f"{r['ratio_p50']:.2g}×",
                        va="center", fontsize=14, color="#1f5fa0")
        ax.set_yticks(range(len(points)))
        ax.set_yticklabels([f"{r['request']}" + (f" (fill {r['fill']})" if r.get("fill", "0") != "0" else "")
                            + f"\n{r['candidates']:,} cand." for r in points], fontsize=14)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
        ax.xaxis.set_major_formatter(FuncFormatter(_ms_tick))
        ax.xaxis.set_minor_formatter(NullFormatter())
        values = [r[key]["p50_ms"] for r in points for key, _, _ in engines if r.get(key)]
        if values:
            ax.set_xlim(min(values) / 2, max(values) * 4)
        ax.tick_params(axis="x", labelsize=14)
        ax.set_title(f"{size:,} compute nodes", fontsize=18, fontweight="bold")
        ax.grid(True, axis="x", alpha=0.4)
    for ax in list(axes.flat)[len(sizes):]:
        ax.axis("off")
    m = results["machine"]
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(handles) or 1, fontsize=13, frameon=False)
    fig.suptitle(
        "GET /allocation_candidates: p50 latency per request (log scale; the number is graph ÷ Placement)\n"
        + {"paused": "gc paused for both  ·  ", "on": "gc on for both  ·  "}.get(
            next((r.get("gc") for r in results["results"]), None), "")
        + f"{m['date'][:10]}  ·  {m['cpu_model']}, {m['cores']} cores  ·  Neo4j {m['neo4j_version']}  ·  "
        f"Placement {m['placement_version']}",
        fontsize=14,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.93))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plotted(rows: list[dict]) -> list[dict]:
    """One regime per chart: the collector paused for both engines where the run had it."""
    regimes = {r.get("gc") for r in rows}
    shown = "paused" if "paused" in regimes else next(iter(regimes), None)
    return [r for r in rows if r.get("gc") == shown]


def _ms_tick(value: float, _position) -> str:
    if value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g} ms"
