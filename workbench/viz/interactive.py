"""The interactive drawing: a pyvis (vis-network) page that works offline.

Only ``Network(cdn_resources="in_line")`` + ``generate_html()`` is used (never
``show()``, which writes a side file and returns an iframe pointing at it), and
the page is post-processed by :func:`workbench.viz.offline.make_offline` so
that it loads nothing from the network.

Every node has a fixed position from :mod:`workbench.viz.layout` (roots at the
top, one row per depth) and physics is off: nothing is random, so the same
graph always gives byte-for-byte the same page, and notebooks pass nbval.
"""

from __future__ import annotations

import html as htmlmod
import json
from typing import Iterable, Mapping

from pyvis.network import Network

from workbench.db import Graph
from workbench.viz import style
from workbench.viz.layout import Box, layout
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, DrawEdge, DrawNode, drawing_for
from workbench.viz.offline import make_offline

OPTIONS = {
    # Explicit levels: every node gets its x/y from workbench.viz.layout (the
    # tidy tree: roots on top, one row per depth, boxes as wide as their text),
    # the same positions the static SVG uses. vis-network's own hierarchical
    # layout would place nodes differently from the SVG, and spaces every box
    # as wide as the widest one (about a fifth wider on numa_network).
    "layout": {"hierarchical": {"enabled": False}, "randomSeed": 0},
    "physics": {"enabled": False},
    "interaction": {"hover": True, "tooltipDelay": 120, "navigationButtons": True, "keyboard": False},
    "nodes": {
        "shape": "box",
        "margin": style.BOX_MARGIN,
        "borderWidth": 1.5,
        "shapeProperties": {"borderRadius": 4},
        "font": {
            "face": style.FONT_FACE, "size": style.FONT_SIZE, "multi": "html", "align": "left", "color": style.TEXT,
            "bold": {"face": style.FONT_FACE, "size": style.FONT_SIZE},
            # Only used by SPACER: its size sets the line height.
            "mono": {"face": style.FONT_FACE, "size": style.LINE_HEIGHT, "vadjust": 0},
        },
    },
    "edges": {
        "smooth": {"enabled": True, "type": "cubicBezier", "forceDirection": "vertical", "roundness": 0.5},
        "font": {"face": style.FONT_FACE, "size": 12, "align": "horizontal", "strokeWidth": 4, "strokeColor": "#ffffff"},
    },
}

# vis-network spaces label lines by their font size, so a descender (the "_"
# in MEMORY_MB) touches the next line; an invisible space in a taller font at
# the end of each line sets the line height to style.LINE_HEIGHT.
SPACER = "<code> </code>"

MIN_SCALE = 0.75  # below this the labels are too small to read

START_VIEW = """<script type="text/javascript">
(function () {
  /* The first view: the whole drawing if it fits at a readable scale; else
     readable, centred on the highlighted providers (or starting at the left).
     Zoom with the wheel or the buttons; the button with four arrows fits all. */
  if (typeof network === "undefined" || !network) { return; }
  var all = %(bounds)s, focus = %(focus)s, minScale = %(min_scale)s, pad = 30;
  var box = document.getElementById("mynetwork");
  var w = box.clientWidth, h = box.clientHeight;
  var fit = Math.min(w / (all.right - all.left + 2 * pad), h / (all.bottom - all.top + 2 * pad), 1.25);
  var middle = function (b) { return {x: (b.left + b.right) / 2, y: (b.top + b.bottom) / 2}; };
  if (fit >= minScale) {
    network.moveTo({position: middle(all), scale: fit});
    return;
  }
  var scale = minScale, at = {x: all.left - pad + w / 2 / minScale, y: middle(all).y};
  if (focus) {
    scale = Math.max(minScale, Math.min(w / (focus.right - focus.left + 2 * pad),
                                        h / (focus.bottom - focus.top + 2 * pad), 1));
    at = middle(focus);
  }
  at.x = Math.max(at.x, all.left - pad + w / 2 / scale);
  at.x = Math.min(at.x, all.right + pad - w / 2 / scale);
  network.moveTo({position: at, scale: scale});
})();
</script>"""

PAGE_CSS = """<style>
  body { margin: 0; font-family: DejaVu Sans, Helvetica, Arial, sans-serif; color: %(text)s; }
  #wb-header { padding: 8px 12px 6px 12px; }
  #wb-header .wb-title { font-size: 17px; font-weight: bold; }
  #wb-header .wb-note { font-size: 13px; margin-top: 3px; }
  #wb-header .wb-legend { font-size: 12px; color: #495057; margin-top: 4px; }
  #wb-header .wb-key { display: inline-block; width: 26px; height: 0; vertical-align: middle; margin: 0 4px 0 10px; }
  #mynetwork { float: none !important; box-sizing: border-box; }
  div.vis-tooltip { white-space: pre; font-family: %(font)s; font-size: 12px; }
</style>"""


def tree_html(
    graph: Graph,
    candidate: Mapping | str | None = None,
    roots: Iterable[str] | None = None,
    *,
    pick: int = 0,
    consumers: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    title: str | None = None,
    height: str = "640px",
) -> str:
    """A self-contained HTML page drawing the provider trees of ``graph``.

    ``candidate``: one ``allocation_requests`` entry (or its allocations) to
    highlight, or a Placement query string whose candidate number ``pick`` is
    highlighted. ``roots``: names or uuids of the trees to draw (default all;
    the sharing providers serving them come along). ``consumers``: draw the
    consumers too. Above ``threshold`` providers, a summary is drawn.
    """
    drawing = drawing_for(
        graph, candidate, roots, pick=pick, consumers=consumers, threshold=threshold, title=title
    )
    return drawing_html(drawing, height=height)


def drawing_html(drawing: Drawing, *, height: str = "640px") -> str:
    """The page for a :class:`~workbench.viz.model.Drawing`."""
    boxes = layout(drawing)
    net = Network(height=height, width="100%", directed=False, cdn_resources="in_line", heading="")
    for node in drawing.nodes:
        box = boxes[node.id]
        net.add_node(node.id, **_node_options(node, box.x, box.y))
    for edge in drawing.edges:
        net.add_edge(edge.source, edge.target, **_edge_options(edge, boxes[edge.source], boxes[edge.target]))
    net.options = OPTIONS
    page = net.generate_html()
    head = f"<title>{htmlmod.escape(drawing.title)}</title>\n" + PAGE_CSS % {"text": style.TEXT, "font": style.FONT_FACE}
    focus = [boxes[n.id] for n in drawing.highlighted] or None
    view = START_VIEW % {
        "bounds": json.dumps(_bounds(boxes.values())),
        "focus": json.dumps(_bounds(focus) if focus else None),
        "min_scale": MIN_SCALE,
    }
    return make_offline(page, head=head, body_start=header_html(drawing), body_end=view)


def _bounds(boxes) -> dict:
    boxes = list(boxes) or [Box(0, 0, 0, 0)]
    return {
        "left": min(b.left for b in boxes), "right": max(b.right for b in boxes),
        "top": min(b.top for b in boxes), "bottom": max(b.bottom for b in boxes),
    }


def header_html(drawing: Drawing) -> str:
    """Title, notes and legend, above the canvas."""
    esc = htmlmod.escape
    notes = "".join(f'<div class="wb-note">{esc(note)}</div>' for note in drawing.notes)
    keys = [
        (f"border-top: 2px solid {style.EDGE}", "parent → child"),
        (f"border-top: 2px dashed {style.SHARING_EDGE}", "sharing provider → tree it serves (via an aggregate)"),
    ]
    if any(e.kind == "consumes" for e in drawing.edges):
        keys.append((f"border-top: 2px dotted {style.CONSUMER_EDGE}", "consumer's allocation"))
    if drawing.candidate is not None:
        keys.append((f"border-top: 6px solid {style.USED_BORDER}", "used by the candidate (amount after +)"))
    legend = "".join(f'<span class="wb-key" style="{k}"></span>{esc(text)}' for k, text in keys)
    bar = f"{style.BAR_USED} used {style.BAR_TAKEN} taken {style.BAR_FREE} free"
    return (
        '<div id="wb-header">'
        f'<div class="wb-title">{esc(drawing.title)}</div>{notes}'
        f'<div class="wb-legend">{legend}<span class="wb-key"></span>{esc(bar)}; hover a box for details</div>'
        "</div>"
    )


def _node_options(node: DrawNode, x: float, y: float) -> dict:
    lines = node.label_lines()
    # vis-network collapses runs of spaces: no-break spaces keep the columns aligned.
    lines = [line.replace(" ", "\u00a0") for line in lines]
    label = "\n".join(line + SPACER for line in [f"<b>{lines[0]}</b>", *lines[1:]])
    fill, border, text, width = style.node_colours(node.role, node.kind, node.sharing, node.fraction)
    options = {
        "label": label,
        "title": "\n".join(node.hover_lines()),
        "shape": "ellipse" if node.kind == "consumer" else "box",
        "x": x,
        "y": y,
        "level": node.level,
        "borderWidth": width,
        "color": {
            "background": fill,
            "border": border,
            "highlight": {"background": fill, "border": style.TEXT},
            "hover": {"background": fill, "border": style.TEXT},
        },
        "font": {"color": text},
        # Not vis-network options: what the node stands for, for readers and tests.
        "kind": node.kind,
        "role": node.role,
    }
    if node.taken:
        options["taken"] = node.taken
    if node.sharing or node.kind == "more":
        options["shapeProperties"] = {"borderDashes": [6, 4], "borderRadius": 4}
    return options


def _edge_options(edge: DrawEdge, source: Box, target: Box) -> dict:
    colour, width = style.edge_colour(edge.kind, edge.role)
    options = {
        "color": {"color": colour, "highlight": colour, "hover": colour},
        "width": width,
        # Not vis-network options: what the edge stands for, for readers and tests.
        "kind": edge.kind,
        "role": edge.role,
    }
    if edge.label:
        options["label"] = edge.label
    if edge.kind == "shares":
        # Bend the arc upwards, over the boxes between the two ends, and about
        # as high for a long edge as for a short one.
        bend = "curvedCW" if target.x >= source.x else "curvedCCW"
        distance = max(abs(target.x - source.x) + abs(target.y - source.y), 1.0)
        roundness = round(min(0.3, max(0.04, 160 / distance)), 3)
        options.update(dashes=[8, 6], arrows="to", smooth={"enabled": True, "type": bend, "roundness": roundness})
    elif edge.kind == "consumes":
        options.update(dashes=[2, 4], arrows="to")
    return options
