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
