"""The five Placement bug reproducers in docs/upstream-bugs/ fail on the real Placement 16.0.0, and only where
and why their reports say; the graph's REST API passes them.

Each YAML file is a gabbi suite in the style of Placement's own functional tests: it builds its providers,
inventories, traits, aggregates and allocations through the API and asserts the correct answer. Here it runs
twice with gabbi's driver, in-process:

* against the real Placement (``placement.deploy.loadapp``, noauth2, a fresh in-memory SQLite database per
  file, as upstream's APIFixture sets it up; see :class:`workbench.comparison.oracle.PlacementOracle`), where
  exactly one test per file must fail: the one named below, with the message below. Every other test in the
  file (the set-up, and the controls showing Placement right on a neighbouring request) must pass, so a typo
  in the YAML cannot pass for the bug;
* against the real Placement again, with the in-process fix each report proposes applied
  (:data:`workbench.comparison.parity.FIXES`), where every test must pass: the stated cause is the cause;
* against the graph's app (:mod:`workbench.conformance.fixtures`, the fixture module the conformance run
  uses), where every test must pass.

``OptimizeForWideProviderTreesFixture`` is an APIFixture with ``[workarounds]
optimize_for_wide_provider_trees = True``; the graph has no such setting (it has one search, whose answers
do not depend on it), so there it is a plain APIFixture.
"""

from __future__ import annotations

import logging
import os
import types
import unittest
import uuid
from pathlib import Path

import pytest
from gabbi import driver, fixture

from workbench.comparison import parity
from workbench.comparison.oracle import PlacementOracle
from workbench.conformance import fixtures as graph_fixtures

BUGS_DIR = Path(__file__).resolve().parent.parent / "docs" / "upstream-bugs"

# file -> (the test that fails on Placement 16.0.0, text its failure message contains)
EXPECTED_FAILURES = {
    "sharing-anchor-collapse": (
        "disk in the unsuffixed group gives both nodes too",
        "Unable to match $.allocation_requests.`len` as 2, got 1",
    ),
    "nested-sharing-provider-500": ("disk in the same group gets the same candidate", "'500' not found in ['200']"),
    "shared-request-amounts": (
        "without group_policy every candidate takes 2 VCPU too",
        # two candidates report 2 VCPU on one provider and 1 on the other: 3 for a 2-VCPU request
        "[1, 1, 1, 1] != [2, 1, 2, 1]",
    ),
    "unknown-name-hidden": (
        "an unknown trait is reported after a group that matches nothing",
        "'200' not found in ['400']",
    ),
    "wide-trees-ignore-usage": (
        "3 VCPU over two groups do not fit",
        "Unable to match $.allocation_requests.`len` as 0, got 1",
    ),
}
# file -> the fix (parity.FIXES) its report proposes; the unknown-name bug has none to try in-process.
FIXED_BY = {
    "sharing-anchor-collapse": parity.SHARING_ANCHOR_BUG,
    "nested-sharing-provider-500": parity.NESTED_SHARING_500,
    "shared-request-amounts": parity.SHARED_AMOUNTS_BUG,
    "wide-trees-ignore-usage": parity.WIDE_TREES_USAGE_BUG,
}
WIDE_TREES = {"workarounds": {"optimize_for_wide_provider_trees": True}}

_oracle: PlacementOracle | None = None


class PlacementAPIFixture(fixture.GabbiFixture):
    """Upstream's APIFixture, in effect: the real Placement on an empty database, and its variables."""

    settings: dict = {}

    def start_fixture(self):
        global _oracle
        for name in graph_fixtures.UUID_VARIABLES:
            os.environ[name] = str(uuid.uuid4())
        os.environ.update(graph_fixtures.FIXED_VARIABLES)
        _oracle = PlacementOracle(settings=self.settings)

    def stop_fixture(self):
        global _oracle
        _oracle.close()
        _oracle = None


class PlacementWideTreesFixture(PlacementAPIFixture):
    settings = WIDE_TREES


def _placement_app(environ, start_response):
    return _oracle.wsgi(environ, start_response)


PLACEMENT = types.SimpleNamespace(
    APIFixture=PlacementAPIFixture, OptimizeForWideProviderTreesFixture=PlacementWideTreesFixture
)
GRAPH = types.SimpleNamespace(
    APIFixture=graph_fixtures.APIFixture, OptimizeForWideProviderTreesFixture=graph_fixtures.APIFixture
)


class _Errors(logging.Handler):
    """The exceptions Placement logs (its fault wrapper logs each 500 with its traceback)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.raised: list[tuple[type, str]] = []  # (exception class, function that raised it)

    def emit(self, record):
        if record.exc_info:
            tb = record.exc_info[2]
            while tb.tb_next:
                tb = tb.tb_next
            self.raised.append((record.exc_info[0], tb.tb_frame.f_code.co_name))


def run_reproducers(fixture_module, intercept, only: str | None = None) -> dict[str, dict[str, str]]:
    """{file: {test name: "" if it passed, else its failure message}} for every YAML file (or ``only`` one)."""
    suites = driver.build_tests(
        str(BUGS_DIR), unittest.TestLoader(), host=None, intercept=intercept, fixture_module=fixture_module,
        test_loader_name="upstream_bugs",
    )  # fmt: skip
    outcome: dict[str, dict[str, str]] = {}
    for file_suite in suites:
        tests = list(file_suite)
        if only not in (None, tests[0].test_base_name):
            continue
        result = unittest.TestResult()
        file_suite.run(result)
        messages = {test.test_data["name"]: "" for test in tests}
        for test, message in result.failures + result.errors:
            messages[test.test_data["name"]] = message
        for test, reason in result.skipped:
            messages[test.test_data["name"]] = f"skipped: {reason}"
        outcome[tests[0].test_base_name] = messages
    return outcome


@pytest.fixture(scope="module")
def on_placement():
    errors = _Errors()
    logger = logging.getLogger("placement")
    logger.addHandler(errors)
    try:
        yield run_reproducers(PLACEMENT, lambda: _placement_app), errors.raised
    finally:
        logger.removeHandler(errors)


@pytest.fixture(scope="module")
def on_fixed_placement():
    """Each file's outcome on Placement with its own fix only."""
    outcome = {}
    for file, bug in FIXED_BY.items():
        with parity.FIXES[bug]():
            outcome.update(run_reproducers(PLACEMENT, lambda: _placement_app, only=file))
    return outcome


@pytest.fixture(scope="module")
def on_graph(session_graph):
    graph_fixtures.use_graph(session_graph.fresh())
    yield run_reproducers(GRAPH, graph_fixtures.setup_app)
    session_graph.loaded = None  # the fixtures emptied and refilled it


def test_every_reproducer_is_checked(on_placement):
    assert sorted(on_placement[0]) == sorted(EXPECTED_FAILURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_fails_on_placement_for_the_stated_reason(on_placement, name):
    outcome, _ = on_placement
    failing, reason = EXPECTED_FAILURES[name]
    failed = {test: message for test, message in outcome[name].items() if message}
    assert list(failed) == [failing], failed
    assert reason in failed[failing], failed[failing]


def test_the_500_is_the_summary_lookup(on_placement):
    # The report's cause: the provider summary of the nested sharing provider's root is missing.
    _, raised = on_placement
    assert (KeyError, "_alloc_candidates_multiple_providers") in raised


@pytest.mark.parametrize("name", sorted(FIXED_BY))
def test_passes_on_placement_with_the_proposed_fix(on_fixed_placement, name):
    failed = {test: message for test, message in on_fixed_placement[name].items() if message}
    assert not failed, failed


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_passes_on_the_graph(on_graph, name):
    failed = {test: message for test, message in on_graph[name].items() if message}
    assert not failed, failed
