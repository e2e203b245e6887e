"""Showing a provider tree in a notebook, and writing it to a file.

:class:`ProviderTree` gives a notebook three representations of one drawing:

* ``text/html``: the static SVG (as an ``<img>`` with a data: URI, which HTML
  sanitizers keep) plus a small script that replaces it with the interactive
  pyvis page in a sandboxed ``<iframe srcdoc>`` (isolated: its CSS cannot
  restyle the notebook). Where scripts do not run (GitHub's notebook view, an
  untrusted notebook in JupyterLab) the script is stripped and the image stays.
* ``image/svg+xml``: the static SVG, for front ends that prefer it.
* ``text/plain``: the indented text summary.

All three are deterministic, so a notebook that shows a tree passes nbval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

from workbench.graphdb.db import Graph
from workbench.viz.interactive import drawing_html
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, drawing_for
from workbench.viz.static import drawing_svg, svg_img
from workbench.viz.text import drawing_text

HEADER_HEIGHT = 80  # px: the page's title and legend, without notes
NOTE_HEIGHT = 20  # px per note line

SWAP_SCRIPT = """<script type="text/javascript">
(function () {
  /* Replace the static drawing with the interactive one, isolated in an iframe.
     The frame starts as tall as the visible notebook area allows; the page
     inside fits its canvas to the drawing and reports its height, and the
     frame shrinks to it (never taller than the visible area). The page is
     told when the pointer leaves the frame. */
  var script = document.currentScript;
  var host = script && script.parentNode;
  if (!host) { return; }
  var still = host.querySelector(".workbench-static");
  var frame = document.createElement("iframe");
  var visible = function () {
    var area = host.closest(".jp-WindowedPanel-outer, .jp-Notebook, .notebook_app #site");
    var h = Math.min(window.innerHeight, area ? area.clientHeight : window.innerHeight);
    return Math.max(%(least)s, h - %(margin)s);
  };
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("title", %(title)s);
  frame.style.cssText = "width: 100%%; border: 1px solid #dee2e6; display: block;";
  frame.style.height = visible() + "px";
  var pointerIn = false;
  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || !event.data) { return; }
    if (event.data.workbenchHeight) {
      frame.style.height = Math.min(event.data.workbenchHeight + 2, visible()) + "px";
    }
    if (event.data.workbenchPointerIn) { pointerIn = true; }
  });
  /* The pointer moves on this page, so it has left the drawing: the drawing
     hides its tooltip and stops zooming. */
  document.addEventListener("mousemove", function () {
    if (pointerIn) {
      pointerIn = false;
      frame.contentWindow.postMessage({workbenchPointerLeft: true}, "*");
    }
  });
  frame.srcdoc = %(page)s;
  if (still) { host.replaceChild(frame, still); } else { host.appendChild(frame); }
})();
</script>"""

FRAME_LEAST = 240  # px: the frame's least height, however small the window
FRAME_MARGIN = 16  # px left free of the visible notebook area (the cell's own padding)


class ProviderTree:
    """A provider-tree drawing for a notebook (a snapshot: the graph is read once).

    ``ProviderTree(graph, candidate=None, roots=None, pick=0, consumers=False,
    threshold=150, title=None, why_not=None)``; ``candidate`` as for :func:`tree_html`;
    ``why_not`` a query string whose excluded providers are marked with their first reason.
    In a notebook the drawing sizes itself (see ``SWAP_SCRIPT`` and
    :data:`workbench.viz.interactive.FRAME_SCRIPT`); ``height`` is the canvas's
    height before it does, which only a standalone page (:meth:`save`) keeps.
    """

    def __init__(
        self,
        graph: Graph,
        candidate: Mapping | str | None = None,
        roots: Iterable[str] | None = None,
        *,
        pick: int = 0,
        consumers: bool = False,
        threshold: int = DEFAULT_THRESHOLD,
        title: str | None = None,
        height: str = "640px",
        why_not: str | None = None,
    ):
        self.drawing: Drawing = drawing_for(
            graph, candidate, roots, pick=pick, consumers=consumers, threshold=threshold, title=title,
            why_not=why_not,
        )
        self.height = height

    @classmethod
    def from_drawing(cls, drawing: Drawing, height: str = "640px") -> "ProviderTree":
        tree = cls.__new__(cls)
        tree.drawing, tree.height = drawing, height
        return tree

    @property
    def html(self) -> str:
        """The interactive page (self-contained, offline)."""
        return drawing_html(self.drawing, height=self.height)

    @property
    def svg(self) -> str:
        return drawing_svg(self.drawing)

    @property
    def text(self) -> str:
        return drawing_text(self.drawing)

    def notebook_html(self) -> str:
        """The ``text/html`` output: static SVG, swapped for the interactive page where scripts run."""
        page = _script_string(self.html)
        script = SWAP_SCRIPT % {
            "title": _script_string(self.drawing.title),
            "least": FRAME_LEAST,
            "margin": FRAME_MARGIN,
            "page": page,
        }
        still = svg_img(self.svg, alt=self.drawing.title)
        return (
            '<div class="workbench-provider-tree">\n'
            f'<div class="workbench-static" style="overflow-x: auto; max-width: 100%;">{still}</div>\n'
            f"{script}\n</div>"
        )

    def header_height(self) -> int:
        """About how tall the page's header is, in px."""
        return HEADER_HEIGHT + NOTE_HEIGHT * len(self.drawing.notes)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text, "text/html": self.notebook_html(), "image/svg+xml": self.svg}

    def __repr__(self) -> str:
        return self.text


def write_tree(
    path: str | Path,
    graph: Graph,
    candidate: Mapping | str | None = None,
    roots: Iterable[str] | None = None,
    *,
    pick: int = 0,
    consumers: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    title: str | None = None,
    height: str | None = None,
    why_not: str | None = None,
) -> Path:
    """Write the interactive drawing as a standalone HTML file (works offline); return its path.

    ``height``: of the drawing area (CSS); default: the browser window less the header.
    """
    tree = ProviderTree(
        graph, candidate, roots, pick=pick, consumers=consumers, threshold=threshold, title=title, why_not=why_not
    )
    tree.height = height or f"calc(100vh - {tree.header_height() + 16}px)"
    return tree.save(path)


def _script_string(text: str) -> str:
    """``text`` as a JavaScript string literal that is safe inside a <script> element."""
    return json.dumps(text).replace("</", "<\\/").replace("<!--", "<\\!--")
