"""``bench-http`` and ``claim-load`` results as JSON, Markdown and a plot."""

from __future__ import annotations

import json
from pathlib import Path


def write(results: dict, out: Path) -> list[Path]:
    """``<out>/<kind>.json``, ``<out>/<kind>.md`` and the plot ``<out>/<kind>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    kind = results["kind"]
    paths = [out / f"{kind}.json", out / f"{kind}.md", out / f"{kind}.png"]
    paths[0].write_text(json.dumps(results, indent=2, default=str) + "\n")
    paths[1].write_text(MARKDOWN[kind](results))
    PLOTS[kind](results, paths[2])
    return paths


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6.5))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    return plt, fig, ax


def latency_plot(results: dict, path: Path) -> None:
    """p50 latency against cloud size, one line per (request, fill) and service: solid the graph,
    dashed Placement, the same colour for the same request."""
    plt, fig, ax = _figure("GET /allocation_candidates over HTTP: p50 against cloud size",
                           "compute nodes", "p50 latency, ms (log scale)")
    series: dict[tuple[str, str], list[dict]] = {}
    for r in results["results"]:
        series.setdefault((r["request"], str(r["fill"])), []).append(r)
    colours = plt.get_cmap("tab20")
    for i, ((request, fill), rows) in enumerate(sorted(series.items())):
        rows.sort(key=lambda r: r["compute_nodes"])
        label = request + ("" if fill in ("0", "0.0") else f" (fill {fill})")
        for service, style in (("graph", "-"), ("placement", "--")):
            ax.plot([r["compute_nodes"] for r in rows], [r[service]["p50_ms"] for r in rows], style, marker="o",
                    color=colours(i % 20), label=f"{label}: {service}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def throughput_plot(results: dict, path: Path) -> None:
    """Claims per second against the number of clients, one line per service and worker count."""
    plt, fig, ax = _figure("Concurrent boots over HTTP: claims per second against clients",
                           "clients (processes)", "claims per second")
    lines: dict[str, list[dict]] = {}
    for r in results["runs"]:
        lines.setdefault(f"{r['service']} ({r['workers']} workers)", []).append(r)
    for label, runs in sorted(lines.items()):
        runs.sort(key=lambda r: r["clients"])
        ax.plot([r["clients"] for r in runs], [r["claims_per_s"] for r in runs], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _header(title: str, results: dict) -> list[str]:
    m = results["machine"]
    return [
        f"# {title}", "",
        f"Date {m['date']}; commit {m['workbench']['commit']} (engine changes not committed: "
        f"{m['workbench']['engine_uncommitted_changes'] or 'none'}); {m['cpu_model']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB; Python {m['python']}; {m['neo4j_version']}; Placement {m['placement_version']}; "
        f"load average at start {m['load_average_at_start']}.", "",
        "Settings: " + "; ".join(f"{k}: {v}" for k, v in results["settings"].items()), "",
    ]  # fmt: skip


def _cpu(per_tree: dict) -> str:
    return ", ".join(f"{tree} {value}" for tree, value in per_tree.items())


def bench_markdown(results: dict) -> str:
    lines = _header("SQL vs graph over HTTP: GET /allocation_candidates", results)
    lines += [
        "| hosts | cloud | fill | request | candidates | graph p50 / p95 ms | Placement p50 / p95 ms "
        "| graph/Placement p50 | server CPU ms per request: graph | Placement |",
        "|---:|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results["results"]:
        g, p = r["graph"], r["placement"]
        lines.append(
            f"| {r['compute_nodes']:,} | {r['cloud']} | {r['fill']} | {r['request']} | {r['candidates']:,} "
            f"| {g['p50_ms']} / {g['p95_ms']} | {p['p50_ms']} / {p['p95_ms']} | {r['ratio_p50']} "
            f"| {_cpu(g['server_cpu_ms_per_request'])} | {_cpu(p['server_cpu_ms_per_request'])} |"
        )
    for key, title in (("mismatches", "Mismatches (not timed)"), ("skipped", "Skipped")):
        if results[key]:
            lines += ["", f"## {title}", ""]
            lines += [f"- {r['compute_nodes']} {r['cloud']} {r['request']}: "
                      f"{(r.get('difference') or r.get('reason'))[:300]}" for r in results[key]]
    lines += ["", "## Loads (both services loaded by their fast paths, then started)", ""]
    lines += [f"- {r['cloud']}: {r['providers']:,} providers, {r['consumers']:,} consumers; graph "
              f"{r['graph_load_and_start_s']} s, Placement {r.get('placement_load_and_start_s')} s"
              for r in results["load"]]
    return "\n".join(lines) + "\n"


def _violations(checks: dict) -> str:
    found = [f"{where} {name} {c['count']}" for where in ("api", "store") for name, c in checks[where].items()
             if c["count"]]
    return "none" if not found else "**" + ", ".join(found) + "**"


def claims_markdown(results: dict) -> str:
    lines = _header("Concurrent claims over HTTP, Nova's way", results)
    lines += [
        "| service | workers | clients | boots | claimed | outcomes | claims/s | boot p50 / p95 ms | 409s (rate) "
        "| retries | server CPU s | violations (API, store) |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results["runs"]:
        lines.append(
            f"| {r['service']} | {r['workers']} | {r['clients']} | {r['boots_made']} | {r['claimed']} "
            f"| {r['outcomes']} | {r['claims_per_s']} | {r['boot_p50_ms']} / {r['boot_p95_ms']} "
            f"| {r['conflicts_409']} ({r['conflict_rate']:.1%}) | {r['retries']} | {_cpu(r['server_cpu_s'])} "
            f"| {_violations(r['checks'])} |"
        )
    shown = [(r, where, name, c) for r in results["runs"] for where in ("api", "store")
             for name, c in r["checks"][where].items() if c["count"]]
    if shown:
        lines += ["", "## Violations found", "", "Reported as found."]
        if any(r["service"].startswith("placement") for r, *_ in shown):
            lines[-1] += (" Placement 16.0.0 retries a claim whose provider generation check failed inside the same "
                          "transaction, so that a racing claim can overcommit a provider: "
                          "docs/upstream-bugs/allocation-retry-overcommit.md.")
        lines.append("")
        for r, where, name, c in shown:
            lines.append(f"- {r['service']} ({r['workers']} workers, C={r['clients']}), {where}, {name}: "
                         f"{c['count']}, e.g. {c['shown'][:3]}")
    return "\n".join(lines) + "\n"


MARKDOWN = {"bench-http": bench_markdown, "claim-load": claims_markdown}
PLOTS = {"bench-http": latency_plot, "claim-load": throughput_plot}
