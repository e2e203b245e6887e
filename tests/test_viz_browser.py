"""The drawings in a real browser (Chromium, driven by Playwright), with the network cut off.

Needs the Debian package ``chromium`` and the PyPI package ``playwright``
(never ``playwright install``: it downloads its own browsers; this test uses
the system Chromium). Skipped, saying why, when either is missing.

Screenshots are kept in ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.engine.candidates import find
from workbench.viz import ProviderTree, write_tree
from workbench.viz import style

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
NUMA = "data/fixtures/numa_network.yaml"
QUERY = "resources_CPU=VCPU:1&resources_FPGA=FPGA:1&group_policy=none&same_subtree=_CPU,_FPGA"




class OfflinePage:
    """A page that may load file: URLs only; every other request is recorded and aborted."""

    def __init__(self, browser, java_script: bool = True):
        self.context = browser.new_context(viewport={"width": 1600, "height": 900}, java_script_enabled=java_script)
        self.left_the_page: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))

    def _route(self, route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            self.left_the_page.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def pixels(path: Path, near: tuple[int, int, int] | None = None, tolerance: int = 40) -> int:
    """How many pixels differ from the white background (or are close to ``near``)."""
    import numpy
    from PIL import Image

    image = numpy.asarray(Image.open(path).convert("RGB"), dtype=numpy.int16)
    if near is None:
        return int(((255 - image).max(axis=2) > 30).sum())
    return int((numpy.abs(image - numpy.array(near)).max(axis=2) <= tolerance).sum())


def test_tree_page_draws_offline(browser, scenario_graph, tmp_path):
    graph, scenario = scenario_graph(NUMA)
    body = find(graph, QUERY)
    pick = next(
        i for i, r in enumerate(body["allocation_requests"]) if scenario.provider("fpga0").uuid in r["allocations"]
    )
    page_file = write_tree(tmp_path / "tree.html", graph, QUERY, pick=pick, height="760px")
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(page_file, ARTIFACTS / "viz_tree_numa_network.html")

    offline = OfflinePage(browser)
    try:
        page = offline.page
        page.goto(page_file.as_uri())
        canvas = page.wait_for_selector("#mynetwork canvas", state="visible", timeout=15000)
        page.wait_for_function("() => typeof network !== 'undefined' && network !== null && network.getScale() > 0")
        page.wait_for_timeout(300)  # one more animation frame after the start view is set
        shot = ARTIFACTS / "viz_tree_numa_network.png"
        page.screenshot(path=str(shot))
        canvas.screenshot(path=str(tmp_path / "canvas.png"))
        drawn = {node["id"] for node in page.evaluate("() => nodes.get()")}
        scale = page.evaluate("() => network.getScale()")
    finally:
        offline.close()
    assert offline.left_the_page == [], "the page tried to load from the network"
    assert offline.errors == []
    assert drawn == {p.uuid for p in scenario.providers}
    assert scale >= 0.7  # labels are drawn at a readable size
    from PIL import Image

    width, height = Image.open(tmp_path / "canvas.png").size
    assert pixels(tmp_path / "canvas.png") > 0.02 * width * height, "the canvas is blank"
    assert pixels(tmp_path / "canvas.png", near=rgb(style.USED_BORDER)) > 200, "the highlight is not visible"


def test_notebook_output_with_and_without_javascript(browser, scenario_graph, tmp_path):
    """The text/html a notebook stores: interactive where scripts run, the static SVG where they do not."""
    graph, _ = scenario_graph(NUMA)
    tree = ProviderTree(graph, QUERY)
    output = tmp_path / "output.html"
    output.write_text(f"<html><body><h3>a notebook output</h3>{tree.notebook_html()}</body></html>", encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)

    offline = OfflinePage(browser)
    try:
        offline.page.goto(output.as_uri())
        frame_element = offline.page.wait_for_selector("iframe[sandbox='allow-scripts']", timeout=15000)
        assert offline.page.query_selector(".workbench-static") is None  # replaced by the interactive drawing
        frame = frame_element.content_frame()
        frame.wait_for_selector("#mynetwork canvas", state="visible", timeout=15000)
        frame.wait_for_function("() => typeof network !== 'undefined' && network !== null")
        offline.page.wait_for_timeout(300)
        frame_element.screenshot(path=str(ARTIFACTS / "viz_notebook_interactive.png"))
    finally:
        offline.close()
    assert offline.left_the_page == [] and offline.errors == []
    assert pixels(ARTIFACTS / "viz_notebook_interactive.png", near=rgb(style.USED_BORDER)) > 200

    static = OfflinePage(browser, java_script=False)  # GitHub's notebook view, an untrusted notebook
    try:
        static.page.goto(output.as_uri())
        static.page.wait_for_selector(".workbench-static img", state="visible", timeout=15000)
        assert static.page.evaluate("() => document.querySelector('.workbench-static img').naturalWidth") > 600
        assert static.page.query_selector("iframe") is None
        static.page.screenshot(path=str(ARTIFACTS / "viz_notebook_static.png"))
    finally:
        static.close()
    assert static.left_the_page == []
    assert pixels(ARTIFACTS / "viz_notebook_static.png", near=rgb(style.USED_BORDER)) > 200
