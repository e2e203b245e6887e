"""``workbench conformance``: Placement's own gabbi suite against the graph.

The tests are built exactly as upstream builds them (placement/tests/
functional/test_api.py): ``gabbi.driver.build_tests`` over the gabbits
directory of the *installed* Placement, unmodified, with this project's
fixture module (:mod:`workbench.conformance.fixtures`) and an in-process
WSGI intercept. Each YAML file is one suite and runs on an empty graph;
files run one after another (they share one Neo4j).

By default a throwaway Neo4j is started for the run and removed after (the
suite empties the database it is given); ``--neo4j-uri`` uses a running
one instead, and empties it.

Exit status: with ``--baseline``, 1 if any test that passed in the baseline
fails now (0 otherwise, even with failures); without it, 0 only when every
test passed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import unittest
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PASS, FAIL, ERROR, SKIP = "pass", "fail", "error", "skip"
# How much of a failure's message the JSON keeps (the tail has the assertion).
MESSAGE_CHARS = 3000
# How many failing test names a console row lists.
CONSOLE_NAMES = 4


def gabbits_dir() -> str:
    """The gabbi files of the installed Placement (read in place, never copied)."""
    import placement.tests.functional

    return os.path.join(os.path.dirname(placement.tests.functional.__file__), "gabbits")


@dataclass
class FileResult:
    name: str
    fixtures: list[str]
    tests: dict[str, dict] = field(default_factory=dict)  # test name -> {"status", "message"?}
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(t["status"] == PASS for t in self.tests.values())

    @property
    def failed(self) -> int:
        return len(self.tests) - self.passed

    def failing(self) -> list[str]:
        return [name for name, t in self.tests.items() if t["status"] != PASS]


def unique_names(tests: list) -> dict[int, str]:
    """Each test's name, made unique in its file (a few files repeat a name: "NAME [2]")."""
    seen: dict[str, int] = {}
    names = {}
    for test in tests:
        name = test.test_data["name"]
        seen[name] = seen.get(name, 0) + 1
        names[id(test)] = name if seen[name] == 1 else f"{name} [{seen[name]}]"
    return names


class _Recorder(unittest.TestResult):
    """One status per test; a failure is never downgraded to a skip."""

    def __init__(self, into: FileResult, names: dict[int, str]):
        super().__init__()
        self.into, self.names = into, names

    def _record(self, test, status: str, err=None) -> None:
        name = self.names[id(test)]
        if status == SKIP and self.into.tests.get(name, {}).get("status") in (FAIL, ERROR):
            return
        entry = {"status": status}
        if err is not None:
            # A failed assertion says it all; an error needs its traceback.
            text = (
                "".join(traceback.format_exception_only(err[0], err[1]))
                if status == FAIL
                else self._exc_info_to_string(err, test)
            )
            entry["message"] = text[-MESSAGE_CHARS:]
        self.into.tests[name] = entry

    def addSuccess(self, test):
        self._record(test, PASS)

    def addExpectedFailure(self, test, err):  # gabbi's xfail that did fail
        self._record(test, PASS)

    def addFailure(self, test, err):
        self._record(test, FAIL, err)

    def addError(self, test, err):
        self._record(test, ERROR, err)

    def addSkip(self, test, reason):
        self._record(test, SKIP)
        self.into.tests[self.names[id(test)]].setdefault("message", reason)

    def addUnexpectedSuccess(self, test):
        self._record(test, FAIL)


def _selected(name: str, patterns: list[str] | None) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatch(name, p) if any(c in p for c in "*?[") else p in name for p in patterns)


def build_suites(only: list[str] | None = None) -> list[tuple[str, unittest.TestSuite]]:
    """(file name, gabbi suite) for each selected YAML file, in file-name order."""
    from gabbi import driver

    from workbench.conformance import fixtures

    suite = driver.build_tests(
        gabbits_dir(),
        unittest.TestLoader(),
        host=None,
        intercept=fixtures.setup_app,
        fixture_module=fixtures,
        test_loader_name="workbench.conformance",
    )
    files = []
    for file_suite in suite:
        tests = list(file_suite)
        if tests and _selected(tests[0].test_base_name, only):
            files.append((tests[0].test_base_name, file_suite))
    return sorted(files, key=lambda pair: pair[0])


def run_suites(suites: list[tuple[str, unittest.TestSuite]], progress=None) -> list[FileResult]:
    results = []
    for index, (name, file_suite) in enumerate(suites, 1):
        tests = list(file_suite)
        result = FileResult(name, [f.__name__ for f in tests[0].fixtures])
        started = time.monotonic()
        names = unique_names(tests)
        file_suite.run(_Recorder(result, names))
        result.seconds = time.monotonic() - started
        for test in tests:  # never reported (should not happen): count as failed
            result.tests.setdefault(names[id(test)], {"status": ERROR, "message": "did not run"})
        results.append(result)
        if progress:
            progress(f"[{index:{len(str(len(suites)))}d}/{len(suites)}] {name}.yaml: {result.passed}/{len(result.tests)} passed "
                     f"({result.seconds:.1f} s)")
    return results


# -- reports -------------------------------------------------------------------------------------


def totals(results: list[FileResult]) -> tuple[int, int]:
    return sum(r.passed for r in results), sum(r.failed for r in results)


def to_json(results: list[FileResult]) -> dict:
    passed, failed = totals(results)
    return {
        "summary": {"passed": passed, "failed": failed, "total": passed + failed, "files": len(results)},
        "files": {
            r.name: {"fixtures": r.fixtures, "passed": r.passed, "failed": r.failed, "seconds": round(r.seconds, 2),
                     "tests": r.tests}
            for r in results
        },
    }


def console_table(results: list[FileResult]) -> str:
    width = max((len(r.name) for r in results), default=10) + 5
    lines = [f"{'file':<{width}} {'passed':>6} {'failed':>6}  failing tests", "-" * (width + 30)]
    for r in results:
        failing = r.failing()
        names = ", ".join(failing[:CONSOLE_NAMES]) + (f", ... ({len(failing) - CONSOLE_NAMES} more)"
                                                       if len(failing) > CONSOLE_NAMES else "")
        lines.append(f"{r.name + '.yaml':<{width}} {r.passed:>6} {r.failed:>6}  {names}")
    passed, failed = totals(results)
    lines.append(f"{passed} passed, {failed} failed")
    return "\n".join(lines)


def markdown_table(results: list[FileResult]) -> str:
    passed, failed = totals(results)
    lines = [
        "# Placement's functional suite against the graph",
        "",
        "Placement 16.0.0's own gabbi files, unmodified, run by `workbench conformance`",
        f"against the workbench's REST API: **{passed} of {passed + failed} tests pass** "
        f"({len(results)} files). Regenerate with `workbench conformance --markdown docs/conformance.md`.",
        "",
        "| file | fixtures | passed | failed | failing tests |",
        "|---|---|---:|---:|---|",
    ]
    for r in results:
        failing = "<br>".join(name.replace("|", "\\|") for name in r.failing())
        lines.append(f"| {r.name}.yaml | {', '.join(r.fixtures)} | {r.passed} | {r.failed} | {failing} |")
    lines += ["", f"{passed} passed, {failed} failed", ""]
    return "\n".join(lines)


def regressions(results: list[FileResult], baseline: dict) -> list[str]:
    """Tests that passed in ``baseline`` (a ``--json`` file) and do not pass now."""
    now = {(r.name, name): t["status"] for r in results for name, t in r.tests.items()}
    lost = []
    for file_name, data in baseline.get("files", {}).items():
        for name, t in data.get("tests", {}).items():
            if t.get("status") == PASS and (file_name, name) in now and now[(file_name, name)] != PASS:
                lost.append(f"{file_name}.yaml: {name}")
    return lost


# -- the command ---------------------------------------------------------------------------------


def add_conformance_parser(sub) -> None:
    p = sub.add_parser(
        "conformance",
        help="run Placement's own gabbi suite (79 files, 1,316 tests) against the graph's REST API",
        description="Run Placement 16.0.0's own functional suite (its gabbi files, unmodified, read from "
        "the installed package) against the graph's REST API, file by file, each on an empty graph. "
        "Starts a throwaway Neo4j unless --neo4j-uri is given (that database is EMPTIED). Exit status: "
        "0 if every test passed; with --baseline, 0 unless a test that passed there fails now.",
    )
    p.add_argument("--json", metavar="FILE", help="write per-test results (status, failure message) as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the per-file table as Markdown")
    p.add_argument("--only", metavar="PATTERN", action="append",
                   help="run only files whose name contains PATTERN (or matches it as a glob); repeatable")
    p.add_argument("--neo4j-uri", metavar="URI",
                   help="use this running Neo4j (with NEO4J_USER/NEO4J_PASSWORD); it is EMPTIED")
    p.add_argument("--baseline", metavar="FILE",
                   help="a previous --json file: exit 1 only if a test that passed there fails now")
    p.add_argument("--failures", action="store_true", help="print each failing test's message")
    p.set_defaults(func=cmd_conformance)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_conformance(args: argparse.Namespace) -> int:
    from workbench.graphdb.db import Graph

    baseline = json.loads(Path(args.baseline).read_text()) if args.baseline else None
    try:
        suites = build_suites(args.only)
    except ModuleNotFoundError as missing:
        if missing.name.split(".")[0] != "gabbi":
            raise
        _say("error: the conformance run needs gabbi (a test dependency): pip install -e '.[test]'")
        return 2
    if not suites:
        _say(f"no gabbi file matches {args.only}")
        return 2
    from workbench.conformance import fixtures  # after the check: it needs gabbi
    _say(f"{len(suites)} files, {sum(s.countTestCases() for _n, s in suites)} tests from {gabbits_dir()}")
    server, home, graph = None, None, None
    try:
        if args.neo4j_uri:
            graph = Graph.connect(args.neo4j_uri)
        else:
            from workbench.graphdb.server import LocalNeo4j, free_port

            home = tempfile.mkdtemp(prefix="workbench-conformance-")
            server = LocalNeo4j(home=Path(home) / "neo4j", bolt_port=free_port(), http_port=None,
                                heap="512m", pagecache="64m", echo=_say)
            server.start()
            graph = server.connect()
        fixtures.use_graph(graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # oslo's deprecation chatter, once per app
            results = run_suites(suites, progress=_say)
    finally:
        if graph is not None:
            graph.close()
        if server is not None:
            server.stop()
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)

    print(console_table(results))
    if args.failures:
        for r in results:
            for name in r.failing():
                print(f"\n== {r.name}.yaml: {name}\n{r.tests[name].get('message', '')}")
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results), indent=1) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(results))
    if baseline is not None:
        lost = regressions(results, baseline)
        for name in lost:
            _say(f"regression: {name}")
        return 1 if lost else 0
    return 0 if totals(results)[1] == 0 else 1
