"""Answers as tables, for the command line and the notebooks."""

from __future__ import annotations

import pandas as pd

from workbench.graphdb.db import Graph


def provider_names(graph: Graph) -> dict[str, str]:
    return {r["uuid"]: r["name"] for r in graph.read("MATCH (rp:Provider) RETURN rp.uuid AS uuid, rp.name AS name")}


def candidates_frame(body: dict, names: dict[str, str]) -> pd.DataFrame:
    """One row per allocation request: what each provider gives, and the group mappings.

    Rows are sorted by their text, so the same answer always prints the same way.
    """
    rows = []
    for request in body["allocation_requests"]:
        takes = "; ".join(
            sorted(
                f"{names.get(rp, rp)}: " + ", ".join(f"{rc} {n}" for rc, n in sorted(v["resources"].items()))
                for rp, v in request["allocations"].items()
            )
        )
        groups = "; ".join(
            f"{suffix or '(unsuffixed)'} → {', '.join(sorted(names.get(rp, rp) for rp in rps))}"
            for suffix, rps in sorted(request.get("mappings", {}).items())
        )
        rows.append({"allocations": takes, "mappings": groups})
    frame = pd.DataFrame(rows, columns=["allocations", "mappings"])
    return frame.sort_values(["allocations", "mappings"], ignore_index=True)


def inventories_frame(rows: list[dict]) -> pd.DataFrame:
    """Every inventory with all its limits, the provider indented under its parent
    (rows of :func:`workbench.engine.providers.inventory_details`)."""
    columns = ["provider", "resource_class", "total", "reserved", "min_unit", "max_unit", "step_size",
               "allocation_ratio", "used", "capacity"]
    shown = [{**row, "provider": "  " * row["depth"] + row["provider"]} for row in rows]
    return pd.DataFrame(shown, columns=columns)


def left_text(frame: pd.DataFrame, column: str) -> str:
    """The frame as text without its index, ``column`` left-aligned (an indented tree reads so)."""
    width = max([len(column), *(len(v) for v in frame[column])])
    shown = frame.rename(columns={column: column.ljust(width)})  # the heading left-aligned too
    return shown.to_string(index=False, formatters={column.ljust(width): f"{{:<{width}}}".format})


def sharing_lines(rows: list[dict]) -> list[str]:
    """``ss1 serves cn1, cn2 through aggregate aggA (uuid)`` per sharing provider and aggregate
    (rows of :func:`workbench.engine.providers.sharing_serves`)."""
    return [
        f"{row['sharing']} serves {', '.join(sorted(row['trees']))} through aggregate "
        + (f"{row['aggregate_name']} ({row['aggregate']})" if row["aggregate_name"] else row["aggregate"])
        for row in rows
    ]


def aggregates_frame(rows: list[dict]) -> pd.DataFrame:
    """Aggregate names beside their UUIDs, and their members."""
    shown = [{"name": r["name"] or "(no name)", "uuid": r["uuid"], "members": ", ".join(r["members"])} for r in rows]
    return pd.DataFrame(shown, columns=["name", "uuid", "members"])


def allocations_frame(body: dict, names: dict[str, str]) -> pd.DataFrame:
    """A consumer's allocations (Placement's GET /allocations/{uuid} body), one row per
    provider and class, with the provider's name beside its UUID."""
    rows = [
        {"provider": names.get(rp, "?"), "uuid": rp, "resource_class": rc, "amount": amount}
        for rp, held in body["allocations"].items()
        for rc, amount in held["resources"].items()
    ]
    frame = pd.DataFrame(rows, columns=["provider", "uuid", "resource_class", "amount"])
    return frame.sort_values(["provider", "resource_class"], ignore_index=True)
