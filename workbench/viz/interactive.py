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
import math
from typing import Iterable, Mapping

from pyvis.network import Network

from workbench.graphdb.db import Graph
from workbench.viz import style
from workbench.viz.layout import TREE_GAP, Box, layout
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
    # zoomView off: the wheel scrolls the notebook; a click on the drawing turns
    # it on (see FRAME_SCRIPT).
    "interaction": {
        "hover": True, "tooltipDelay": 120, "navigationButtons": True, "keyboard": False, "zoomView": False,
    },
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
TREE_ROW_GAP = 24  # px between rows of trees, when the page flows them into rows
ARC_ROOM = 36  # px above the top row: a sharing arc between neighbours, and its label, bend up this far

# The smallest zoom the first view may use: labels drawn at 12 px or more,
# readable on a projector at 1280x720.
MIN_SCALE = math.ceil(12 / style.FONT_SIZE * 1000) / 1000
MAX_SCALE = 1.15  # small drawings are not blown up further

FRAME_SCRIPT = """<script type="text/javascript">
(function () {
  /* The first view, sized for what matters.
     1. Trees flow into rows no wider than the canvas at a readable zoom
        (text >= 12 px), so a drawing never needs sideways panning to be read.
     2. The canvas is as tall as the drawing at that zoom, capped by the
        window (in a notebook, the frame is capped by the visible notebook
        area): no blank band, never taller than the screen.
     3. If everything fits it is all shown; otherwise the view starts on the
        highlighted providers (or at the top left).
     The wheel scrolls the page until the drawing is clicked (then it zooms,
     until the pointer leaves); the four-arrow button fits all. */
  if (typeof network === "undefined" || !network) { return; }
  var trees = %(trees)s, focusIds = %(focus)s, sizes = %(sizes)s;
  var minScale = %(min_scale)s, maxScale = %(max_scale)s, gapX = %(gap_x)s, gapY = %(gap_y)s, pad = 12;
  var arcs = %(arc_room)s;  /* room above the top row for the sharing arcs, which bend upwards */
  var box = document.getElementById("mynetwork");
  var header = document.getElementById("wb-header");
  var origin = network.getPositions(), lastWidth = -1, room = 0;

  var flow = function (across) {  /* trees into rows; each node's new centre */
    var rows = [], row = null;
    trees.forEach(function (t) {
      var tw = t.right - t.left;
      if (!row || (row.trees.length && row.width + gapX + tw > across)) {
        row = {trees: [], width: -gapX, height: 0};
        rows.push(row);
      }
      row.trees.push(t);
      row.width += gapX + tw;
      row.height = Math.max(row.height, t.bottom - t.top);
    });
    var centres = {}, top = 0, width = 0;
    rows.forEach(function (r) {
      var left = 0;
      r.trees.forEach(function (t) {
        t.ids.forEach(function (id) {
          centres[id] = {x: origin[id].x - t.left + left, y: origin[id].y - t.top + top};
        });
        left += t.right - t.left + gapX;
      });
      width = Math.max(width, r.width);
      top += r.height + gapY;
    });
    return {rows: rows.length, centres: centres, width: width, height: Math.max(top - gapY, 0)};
  };

  var bounds = function (ids, centres) {
    var b = null;
    ids.forEach(function (id) {
      var c = centres[id], s = sizes[id];
      if (!c || !s) { return; }
      var e = {left: c.x - s[0] / 2, right: c.x + s[0] / 2, top: c.y - s[1] / 2, bottom: c.y + s[1] / 2};
      b = b ? {left: Math.min(b.left, e.left), right: Math.max(b.right, e.right),
               top: Math.min(b.top, e.top), bottom: Math.max(b.bottom, e.bottom)} : e;
    });
    return b;
  };

  var frame = function () {
    var w = box.clientWidth;
    if (!w || !window.innerHeight) { setTimeout(frame, 50); return; }  /* not laid out yet */
    if (w === lastWidth) { return; }  /* only a new width needs a new view */
    lastWidth = w;
    /* The room is the window's height when first shown (in a notebook: the
       visible notebook area); the page then shrinks its frame to fit. */
    room = room || window.innerHeight;
    var maxH = Math.max(160, room - (header ? header.offsetHeight : 0) - 4);
    var laid = flow(w / minScale - 2 * pad);
    nodes.update(Object.keys(laid.centres).map(function (id) {
      return {id: id, x: laid.centres[id].x, y: laid.centres[id].y};
    }));
    var all = {left: 0, top: -arcs, right: laid.width, bottom: laid.height};
    var fit = function (b) { return Math.min(w / (b.right - b.left + 2 * pad), maxH / (b.bottom - b.top + 2 * pad)); };
    var focus = bounds(focusIds, laid.centres);
    var scale = Math.min(fit(all), maxScale);
    if (scale < minScale) {
      /* Not all of it at a readable size: readable, and the highlighted boxes
         all in view (zooming out below 12 px only if they cannot be). */
      scale = focus ? Math.min(minScale, fit(focus)) : minScale;
    }
    var canvasH = Math.min(maxH, Math.ceil((all.bottom - all.top + 2 * pad) * scale));
    var at = function (lo, hi, span, a, b) {  /* centre on [a, b], kept inside [lo, hi] */
      if (hi - lo + 2 * pad <= span) { return (lo + hi) / 2; }
      return Math.min(Math.max((a + b) / 2, lo - pad + span / 2), hi + pad - span / 2);
    };
    var target = focus || {left: all.left, right: all.left, top: all.top, bottom: all.top};
    var x = at(all.left, all.right, w / scale, target.left, target.right);
    var y = at(all.top, all.bottom, canvasH / scale, target.top, target.bottom);
    box.style.height = canvasH + "px";
    network.setSize(w + "px", canvasH + "px");
    network.moveTo({position: {x: x, y: y}, scale: scale});
    window.workbenchView = {scale: scale, rows: laid.rows, canvasHeight: canvasH};
    if (window.parent !== window) {
      /* Tell the notebook how tall this page now is (see display.SWAP_SCRIPT). */
      window.parent.postMessage({workbenchHeight: document.body.scrollHeight}, "*");
    }
  };
  frame();
  window.addEventListener("resize", frame);

  var hideTips = function () {
    document.querySelectorAll("div.vis-tooltip").forEach(function (tip) { tip.style.visibility = "hidden"; });
  };
  var zooming = function (on) {
    network.setOptions({interaction: {zoomView: on}});
    box.classList.toggle("wb-active", on);
  };
  /* A page in a sandboxed frame is not told when the pointer leaves the frame
     (Chromium sends it no mouseleave), so the notebook page, which sees the
     pointer move outside, tells it (see display.SWAP_SCRIPT). */
  var inside = false;
  var left = function () { inside = false; zooming(false); hideTips(); };
  box.addEventListener("click", function () { zooming(true); });
  box.addEventListener("mouseleave", left);
  box.addEventListener("mousemove", function () {
    if (!inside && window.parent !== window) { window.parent.postMessage({workbenchPointerIn: true}, "*"); }
    inside = true;
  });
  window.addEventListener("blur", hideTips);
  window.addEventListener("message", function (event) {
    if (event.data && event.data.workbenchPointerLeft) { left(); }
  });
})();
</script>"""

PAGE_CSS = """<style>
  body { margin: 0; font-family: DejaVu Sans, Helvetica, Arial, sans-serif; color: %(text)s; }
  #wb-header { padding: 8px 12px 6px 12px; }
  #wb-header .wb-title { font-size: 17px; font-weight: bold; }
  #wb-header .wb-note { font-size: 13px; margin-top: 3px; }
  #wb-header .wb-legend { font-size: 12px; color: #495057; margin-top: 4px; }
  #wb-header .wb-key { display: inline-block; width: 26px; height: 0; vertical-align: middle; margin: 0 4px 0 10px; }
  html, body { overflow: hidden; }  /* the wheel goes on to the notebook */
  #mynetwork { float: none !important; box-sizing: border-box; }
  #mynetwork.wb-active { border-color: %(active)s !important; }
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
    why_not: str | None = None,
) -> str:
    """A self-contained HTML page drawing the provider trees of ``graph``.

    ``candidate``: one ``allocation_requests`` entry (or its allocations) to
    highlight, or a Placement query string whose candidate number ``pick`` is
    highlighted. ``roots``: names or uuids of the trees to draw (default all;
    the sharing providers serving them come along). ``consumers``: draw the
    consumers too. Above ``threshold`` providers, a summary is drawn.
    ``why_not``: a Placement query string; each provider in none of its
    candidates is faded and marked (✗) with the first reason why.
    """
    drawing = drawing_for(
        graph, candidate, roots, pick=pick, consumers=consumers, threshold=threshold, title=title,
        why_not=why_not,
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
    head = f"<title>{htmlmod.escape(drawing.title)}</title>\n" + PAGE_CSS % {
        "text": style.TEXT, "font": style.FONT_FACE, "active": style.PROVIDER_BORDER,
    }
    view = FRAME_SCRIPT % {
        "trees": json.dumps(_tree_groups(drawing, boxes)),
        "focus": json.dumps([n.id for n in drawing.highlighted]),
        "sizes": json.dumps({i: [b.width, b.height] for i, b in boxes.items()}),
        "min_scale": MIN_SCALE,
        "max_scale": MAX_SCALE,
        "gap_x": TREE_GAP,
        "gap_y": TREE_ROW_GAP,
        "arc_room": ARC_ROOM if any(e.kind == "shares" for e in drawing.edges) else 0,
    }
    return make_offline(page, head=head, body_start=header_html(drawing), body_end=view)


def _tree_groups(drawing: Drawing, boxes: Mapping[str, Box]) -> list[dict]:
    """The drawing's trees in order, each with its node ids and bounds: the
    blocks the page flows into rows (a summary view is one block)."""
    parent = {n.id: n.parent for n in drawing.nodes}

    def root(node_id: str) -> str:
        while parent.get(node_id):
            node_id = parent[node_id]
        return node_id

    groups: dict[str, list[str]] = {}
    for n in drawing.nodes:
        if drawing.summary:
            key = ""
        elif n.kind == "consumer":  # with the tree of the first provider it uses
            key = root(next(e.source for e in drawing.edges if e.kind == "consumes" and e.target == n.id))
        else:
            key = root(n.id)
        groups.setdefault(key, []).append(n.id)
    result = []
    for ids in groups.values():
        members = [boxes[i] for i in ids]
        result.append({
            "ids": ids,
            "left": min(b.left for b in members), "right": max(b.right for b in members),
            "top": min(b.top for b in members), "bottom": max(b.bottom for b in members),
        })
    return result


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
        f'<div class="wb-legend">{legend}<span class="wb-key"></span>{esc(bar)}; hover a box for details; '
        "click the drawing to zoom with the wheel</div>"
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
