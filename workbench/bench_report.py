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
    return r["compute_nodes"], r["cloud"], r["request"]


def _load_key(r: dict) -> tuple:
    return r["compute_nodes"], r["cloud"]


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
    merged["results"].sort(key=lambda r: (r["compute_nodes"], order.get(r["request"], 99)))
    merged["load"].sort(key=lambda r: (r["compute_nodes"], r["cloud"]))
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
        + ("; also on PostgreSQL)" if s.get("placement_postgresql") else ")"),
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
        "(a shared VM: other work was running, so treat differences under ~30 % as noise)",
        f"- **Software:** Python {m['python']}; Neo4j {m['neo4j_version']} ({m['neo4j_uri']}, "
        f"{_settings(m.get('neo4j_settings'))}), neo4j driver {m['neo4j_driver']} "
        f"(Rust extension {m.get('neo4j_rust_ext', '?') or 'not installed'}); "
        f"openstack-placement {m['placement_version']}, SQLAlchemy {m.get('sqlalchemy')}",
        "- **Bolt round trip** (`RETURN 1` through `Graph.read`, in its own transaction: the fixed cost of a "
        "Cypher call; a search's calls share one transaction and cost less): "
        f"median {rtt.get('p50')} ms, min {rtt.get('min')} ms",
        f"- **Placement settings:** {_settings(s.get('placement'))}",
        f"- **Code:** workbench commit {code.get('commit', '?')}; uncommitted changes in workbench/engine: "
        f"{', '.join(code['engine_uncommitted_changes']) if code.get('engine_uncommitted_changes') else 'none'}",
        f"- **Timed:** "
        + (f"Neo4j first warmed up ({s['neo4j_warm_up_s']} s of every request on 20-host clouds: a fresh JVM "
           "runs the query code interpreted at first); then per request " if s.get("neo4j_warm_up_s") else "")
        + f"1 warm-up, then {s['repeat']} runs per engine (per-row `repeat` below if runs were merged). "
        f"Graph: {s['graph_timed']}. Placement: {s['placement_timed']}. Before timing, both engines' answers "
        "were compared (`workbench.parity.compare`; with `limit`: same count, each candidate valid).",
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
        "CUSTOM_LEGACY. `{cn00000}` is the first host's UUID.",
        "",
        "## Latency (ms)",
        "",
        "Wall time per request, and CPU time per request: for the graph the median over the runs of the Python "
        "client's plus the Neo4j JVM's CPU time (in brackets the median of each part on its own, so the parts "
        "need not add up to the total), for Placement this process's (it runs in process). On a shared machine "
        "the CPU figures are the steadier comparison.",
        "",
        "| compute nodes | cloud | request | candidates | graph p50 | graph p95 | Placement p50 | Placement p95 "
        "| graph/Placement p50 | CPU graph (Python + Neo4j) | CPU Placement | CPU ratio | runs |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in results["results"]:
        g, p = r["graph"], r["placement_sqlite"]
        graph_cpu = (
            f"{_ms(g['cpu_p50_ms'])} ({_ms(g['client_cpu_p50_ms'])} + {_ms(g['server_cpu_p50_ms'])})"
            if g.get("cpu_p50_ms") is not None else "–"
        )
        lines.append(
            f"| {r['compute_nodes']:,} | {r['cloud']} | {r['request']} | {r['candidates']:,} | {_ms(g['p50_ms'])} "
            f"| {_ms(g['p95_ms'])} | {_ms(p['p50_ms'])} | {_ms(p['p95_ms'])} | {_ratio(g['p50_ms'], p['p50_ms'])} "
            f"| {graph_cpu} | {_ms(p.get('cpu_p50_ms'))} | {_plain_ratio(r.get('ratio_cpu_p50'))} "
            f"| {r.get('repeat', s['repeat'])} |"
        )
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
        "| compute nodes | request | total | Cypher | driver CPU | Neo4j CPU | Python | JSON "
        "| largest query: ms (driver / Neo4j CPU ms), rows | response size graph / Placement |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results["results"]:
        b = r["graph_breakdown"]
        top = max(b["queries"].items(), key=lambda kv: kv[1]["ms"]) if b["queries"] else None
        top_text = (
            f"{top[0]}: {_ms(top[1]['ms'])} ({_ms(top[1].get('client_cpu_ms'))} / "
            f"{_ms(top[1].get('server_cpu_ms'))}), {top[1]['rows']:,} rows"
            if top else "–"
        )
        lines.append(
            f"| {r['compute_nodes']:,} | {r['request']} | {_ms(b['find_ms'] + b['json_ms'])} | {_ms(b['cypher_ms'])} "
            f"| {_ms(b.get('cypher_client_cpu_ms'))} | {_ms(b.get('cypher_server_cpu_ms'))} "
            f"| {_ms(b['python_ms'])} | {_ms(b['json_ms'])} | {top_text} "
            f"| {_kb(r['graph']['response_bytes'])} / {_kb(r['placement_sqlite']['response_bytes'])} |"
        )
    lines += _postgres_section(results)
    lines += [
        "",
        "## Loading",
        "",
        "Graph: `workbench.engine.loader.load(reset=True)` (batched UNWIND over Bolt, transactions of at most "
        "10,000 providers, emptying the database first). Placement: `PlacementOracle.load_bulk`, Placement's "
        "object layer (the calls its REST handlers make, without HTTP); for small clouds also the REST API "
        "(`PlacementOracle.load`, ~2–4 calls per provider).",
        "",
        "| compute nodes | cloud | providers | graph (s) | Placement object layer (s) | Placement REST (s) "
        "| Python RSS peak (MB) | Neo4j RSS now / peak (MB) | Neo4j heap used (MB) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in results["load"]:
        mem = e.get("memory") or {}
        lines.append(
            f"| {e['compute_nodes']:,} | {e['cloud']} | {e['providers']:,} | {e['graph_s']} | {e['placement_s']} "
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
        lines += ["", "## Skipped", "", "| compute nodes | request | reason |", "|---:|---|---|"]
        for k in results["skipped"]:
            lines.append(f"| {k['compute_nodes']:,} | {k['request']} | {k['reason']} |")
    lines += ["", "## Disagreements", ""]
    if results.get("mismatches"):
        for k in results["mismatches"]:
            lines += [f"- **{k['compute_nodes']:,} {k['cloud']} {k['request']}** `{k['query']}`:",
                      "", "```", k["difference"], "```"]
    else:
        lines.append("None: on every request timed, both engines gave the same answer.")
    return "\n".join(lines) + "\n"


def _postgres_section(results: dict) -> list[str]:
    """Placement on PostgreSQL, when the run had it (``workbench bench --postgres``)."""
    timed = [r for r in results["results"] if r.get("placement_postgresql")]
    if not timed:
        return []
    lines = [
        "",
        "## Placement on PostgreSQL",
        "",
        "The same requests of the same Placement with its database on PostgreSQL (Debian's package, a "
        "throwaway server on loopback with default settings), as in production; its answers were checked "
        "against the graph's too. Wall time only (PostgreSQL's CPU is in its own processes).",
        "",
        "| compute nodes | request | candidates | graph p50 | Placement SQLite p50 | Placement PostgreSQL p50 "
        "| Placement PostgreSQL p95 | graph/PostgreSQL p50 |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in timed:
        pg = r["placement_postgresql"]
        lines.append(
            f"| {r['compute_nodes']:,} | {r['request']} | {r['candidates']:,} | {_ms(r['graph']['p50_ms'])} "
            f"| {_ms(r['placement_sqlite']['p50_ms'])} | {_ms(pg['p50_ms'])} | {_ms(pg['p95_ms'])} "
            f"| {_ratio(r['graph']['p50_ms'], pg['p50_ms'])} |"
        )
    loads = [e for e in results["load"] if e.get("placement_postgresql_s") is not None]
    if loads:
        lines += ["", "Loading Placement on PostgreSQL (object layer): " + "; ".join(
            f"{e['compute_nodes']:,} {e['cloud']} {e['placement_postgresql_s']} s" for e in loads) + "."]
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


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

    names = [r["name"] for r in results["requests"] if any(x["request"] == r["name"] for x in results["results"])]
    if not names:
        names = ["(no results)"]
    columns = min(4, len(names))
    rows = (len(names) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.7 * rows + 1.2), squeeze=False)
    about = {r["name"]: r for r in results["requests"]}
    for ax, name in zip(axes.flat, names):
        points = sorted((r for r in results["results"] if r["request"] == name), key=lambda r: r["compute_nodes"])
        xs = [r["compute_nodes"] for r in points]
        values = []
        for key, label, colour, marker in (
            ("graph", GRAPH_LABEL, "#1f77b4", "o"),
            ("placement_sqlite", PLACEMENT_LABEL, "#d62728", "s"),
            ("placement_postgresql", POSTGRES_LABEL, "#2ca02c", "^"),
        ):
            timed = [r for r in points if r.get(key)]
            if not timed:
                continue
            at = [r["compute_nodes"] for r in timed]
            p50 = [r[key]["p50_ms"] for r in timed]
            p95 = [r[key]["p95_ms"] for r in timed]
            values += p50 + p95
            ax.plot(at, p50, marker=marker, color=colour, label=f"{label}: p50")
            ax.plot(at, p95, linestyle=":", color=colour, linewidth=1.2, label=f"{label}: p95")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if xs:
            ax.set_xlim(min(xs) / 2, max(xs) * 2)
            ax.xaxis.set_major_locator(FixedLocator(xs))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{r['compute_nodes']:,}\n{r['candidates']:,} cand." for r in points], fontsize=8)
        if values:
            lo, hi = min(values), max(values)
            ax.set_ylim(lo / 1.8, hi * 1.8)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
        ax.yaxis.set_major_formatter(FuncFormatter(_ms_tick))
        ax.yaxis.set_minor_formatter(NullFormatter())
        cloud = about.get(name, {}).get("cloud", "")
        ax.set_title(f"{name}  ({cloud} cloud)", fontsize=10)
        ax.set_xlabel("compute nodes (and candidates returned)", fontsize=8)
        ax.set_ylabel("latency per request", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", axis="y", alpha=0.1)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    m = results["machine"]
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(handles) or 1, fontsize=9, frameon=False)
    fig.suptitle(
        "GET /allocation_candidates: latency against cloud size, both axes logarithmic\n"
        f"{m['date'][:10]}  ·  {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB RAM  ·  "
        f"Neo4j {m['neo4j_version']} (Bolt, Python driver)  ·  Placement {m['placement_version']} "
        "(SQLite in memory, in process" + ("; and on PostgreSQL, loopback)" if any(
            r.get("placement_postgresql") for r in results["results"]) else ")"),
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.955))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ms_tick(value: float, _position) -> str:
    if value >= 1000:
        return f"{value / 1000:g} s"
    return f"{value:g} ms"
