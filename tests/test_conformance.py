"""Placement's own functional suite, unmodified, passes against the graph's REST API.

`workbench conformance` reads Placement 16.0.0's 79 gabbi files from the installed package and runs them,
each on an empty graph of a throwaway Neo4j it starts, with the project's fixture module. The expected
answers are Placement's: every assertion is one of upstream's tests. The count is the suite's census for
16.0.0 (../shared/reference/placement-api.md: 79 files, 1,316 tests), so a file silently not collected, or a
test lost, fails here too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_FILES, UPSTREAM_TESTS = 79, 1316


def test_placement_functional_suite_passes_unmodified(tmp_path):
    report, table = tmp_path / "conformance.json", tmp_path / "conformance.md"
    run = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "conformance", "--json", str(report), "--markdown", str(table),
         "--failures"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    print(run.stdout[-20000:])  # the per-file table, in the CI log
    summary = json.loads(report.read_text())["summary"]
    assert (summary["files"], summary["total"]) == (UPSTREAM_FILES, UPSTREAM_TESTS)
    assert summary["failed"] == 0, run.stdout[-5000:]
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.rstrip().splitlines()[-1] == f"{UPSTREAM_TESTS} passed, 0 failed"
    # The committed table is the one this run produces (regenerate it with the command in its header).
    assert table.read_text() == (ROOT / "docs" / "conformance.md").read_text()
