"""The static drawing: the same tree as an SVG, for places that run no JavaScript.

GitHub's notebook view and untrusted notebooks strip scripts, so the
interactive drawing is blank there; this SVG shows the same boxes at the same
positions (:mod:`workbench.viz.layout`), with the same highlighting, and with
each box's details as an SVG ``<title>`` (a hover tooltip where supported).
"""

from __future__ import annotations

import base64
import textwrap
from html import escape
from typing import Iterable, Mapping

from workbench.graphdb.db import Graph
from workbench.viz import style
from workbench.viz.layout import Box, layout
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, DrawEdge, DrawNode, drawing_for

PAD = 16
HEADER_LINE = 19
ARC_ROOM = 46  # above a row, for the sharing arcs between boxes of that row
BAR_FREE_FILL = "#e9ecef"
BAR_USED_FILL = "#1c5d99"


def tree_svg(
    graph: Graph,
    candidate: Mapping | str | None = None,
    roots: Iterable[str] | None = None,
    *,
    pick: int = 0,
    consumers: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    title: str | None = None,
    why_not: str | None = None,
) -> str:
    """The provider trees of ``graph`` as a standalone SVG document (arguments as :func:`tree_html`)."""
    drawing = drawing_for(
        graph, candidate, roots, pick=pick, consumers=consumers, threshold=threshold, title=title,
        why_not=why_not,
    )
    return drawing_svg(drawing)


def drawing_svg(drawing: Drawing) -> str:
    boxes = layout(drawing)
    content_width = max((b.right for b in boxes.values()), default=300)
    chars = max(int((content_width + 2 * PAD) / (style.CHAR_WIDTH * 0.95)), 70)
    header = [(drawing.title, True)] + [(line, False) for note in drawing.notes for line in textwrap.wrap(note, chars)]
    header += [(line, False) for line in textwrap.wrap(_legend(drawing), chars)]
    same_row_arcs = any(
        e.kind == "shares" and abs(boxes[e.source].y - boxes[e.target].y) < 1 for e in drawing.edges
    )
    dx = PAD
    dy = PAD + HEADER_LINE * len(header) + 10 + (ARC_ROOM if same_row_arcs else 0)
    width = round(max(content_width + 2 * PAD, 640))
    height = round(dy + max((b.bottom for b in boxes.values()), default=0) + PAD)
    moved = {i: Box(b.x + dx, b.y + dy, b.width, b.height) for i, b in boxes.items()}

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{style.FONT_FACE}" font-size="{style.FONT_SIZE}" '
        'class="workbench-provider-tree">',
        f"<title>{escape(drawing.title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for i, (line, bold) in enumerate(header):
        weight = ' font-weight="bold" font-size="16"' if bold else ' font-size="13"'
        out.append(f'<text x="{PAD}" y="{PAD + 13 + i * HEADER_LINE}"{weight} fill="{style.TEXT}">{escape(line)}</text>')
    for edge in drawing.edges:
        out.append(_edge(edge, moved[edge.source], moved[edge.target]))
    for node in drawing.nodes:
        out.append(_node(node, moved[node.id]))
    out.append("</svg>")
    return "\n".join(out)


def _legend(drawing: Drawing) -> str:
    parts = ["solid line: parent → child", "dashed: sharing provider → tree it serves"]
    if any(e.kind == "consumes" for e in drawing.edges):
        parts.append("dotted: a consumer's allocation")
    if drawing.candidate is not None:
        parts.append("orange: used by the candidate (+amount); grey: not used")
    parts.append("bar: blue used, orange taken, grey free")
    return "; ".join(parts)


def _node(node: DrawNode, box: Box) -> str:
    fill, border, text, width = style.node_colours(node.role, node.kind, node.sharing, node.fraction)
    dash = ' stroke-dasharray="6 4"' if node.sharing or node.kind == "more" else ""
    opacity = ' opacity="0.55"' if node.role == "faded" else ""
    out = [
        f'<g class="node {node.role}" data-id="{escape(node.id)}" data-name="{escape(node.name)}" '
        f'data-role="{node.role}"{opacity}>',
        f"<title>{escape(chr(10).join(node.hover_lines()))}</title>",
    ]
    if node.kind == "consumer":
        out.append(
            f'<ellipse cx="{box.x}" cy="{box.y}" rx="{box.width / 2}" ry="{box.height / 2}" '
            f'fill="{fill}" stroke="{border}" stroke-width="{width}"/>'
        )
    else:
        out.append(
            f'<rect x="{box.left}" y="{box.top}" width="{box.width}" height="{box.height}" rx="4" '
            f'fill="{fill}" stroke="{border}" stroke-width="{width}"{dash}/>'
        )
    left = box.left + style.BOX_MARGIN + (style.BOX_MARGIN if node.kind == "consumer" else 0)
    baseline = box.top + style.BOX_MARGIN + style.LINE_HEIGHT - 5
    out.append(f'<text x="{left}" y="{baseline}" font-weight="bold" fill="{text}">{escape(node.name)}</text>')
    row = 1
    if node.kind == "consumer":
        for line in node.label_lines()[1:]:
            out.append(f'<text x="{left}" y="{baseline + row * style.LINE_HEIGHT}" fill="{text}">{escape(line)}</text>')
            row += 1
    for heading, prefix, usage in node.usage_rows():
        if heading:
            y = baseline + row * style.LINE_HEIGHT
            out.append(f'<text x="{left}" y="{y}" fill="{text}">{escape(heading)}</text>')
            row += 1
        y = baseline + row * style.LINE_HEIGHT
        out.append(f'<text x="{left}" y="{y}" fill="{text}" xml:space="preserve">{escape(prefix)}</text>')
        out.append(_bar(left + (len(prefix) + 1) * style.CHAR_WIDTH, y, usage.used, usage.taken, usage.capacity))
        if usage.taken:
            x = left + (len(prefix) + 2 + style.BAR_CELLS) * style.CHAR_WIDTH
            out.append(f'<text x="{x:.1f}" y="{y}" font-weight="bold" fill="{style.USED_BORDER}">+{usage.taken}</text>')
        row += 1
    if node.folded or node.why_not:  # the label's last line: "+ n below", or the why-not mark
        out.append(
            f'<text x="{left}" y="{baseline + row * style.LINE_HEIGHT}" fill="{text}">'
            f"{escape(node.label_lines()[-1])}</text>"
        )
    out.append("</g>")
    return "\n".join(out)


def _bar(x: float, baseline: float, used: int, taken: int, capacity: int) -> str:
    """A used/taken/free bar where the text bar would be."""
    width = style.BAR_CELLS * style.CHAR_WIDTH
    height, top = 10, baseline - 10
    if capacity <= 0:
        used_w, taken_w = width, 0.0
    else:
        used_w = min(width, width * used / capacity)
        taken_w = min(width - used_w, max(width * taken / capacity, 3.0 if taken else 0.0))
    parts = [f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" height="{height}" fill="{BAR_FREE_FILL}" stroke="#adb5bd" stroke-width="0.5"/>']
    if used_w:
        parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{used_w:.1f}" height="{height}" fill="{BAR_USED_FILL}"/>')
    if taken_w:
        parts.append(
            f'<rect x="{x + used_w:.1f}" y="{top:.1f}" width="{taken_w:.1f}" height="{height}" fill="{style.USED_BORDER}"/>'
        )
    return "".join(parts)


def _edge(edge: DrawEdge, a: Box, b: Box) -> str:
    colour, width = style.edge_colour(edge.kind, edge.role)
    dash = {"parent": "", "shares": ' stroke-dasharray="8 6"', "consumes": ' stroke-dasharray="2 4"'}[edge.kind]
    if edge.kind == "shares" and abs(a.y - b.y) < 1:
        # Same row: an arc over the boxes, from top to top.
        lift = ARC_ROOM - 6
        path = f"M{a.x:.1f},{a.top:.1f} C{a.x:.1f},{a.top - lift:.1f} {b.x:.1f},{b.top - lift:.1f} {b.x:.1f},{b.top:.1f}"
        label_x, label_y = (a.x + b.x) / 2, a.top - lift * 0.75 - 3
    else:
        upper, lower = (a, b) if a.y <= b.y else (b, a)
        mid = (upper.bottom + lower.top) / 2
        path = (
            f"M{upper.x:.1f},{upper.bottom:.1f} C{upper.x:.1f},{mid:.1f} "
            f"{lower.x:.1f},{mid:.1f} {lower.x:.1f},{lower.top:.1f}"
        )
        label_x, label_y = (upper.x + lower.x) / 2, mid - 3
    out = [
        f'<path class="edge {edge.kind} {edge.role}" d="{path}" fill="none" stroke="{colour}" '
        f'stroke-width="{width}"{dash}/>'
    ]
    if edge.label:
        out.append(
            f'<text x="{label_x:.1f}" y="{label_y:.1f}" font-size="11" text-anchor="middle" fill="{colour}" '
            f'stroke="#ffffff" stroke-width="3" paint-order="stroke">{escape(edge.label)}</text>'
        )
    return "".join(out)


def svg_img(svg: str, alt: str = "") -> str:
    """``svg`` as an ``<img>`` with a data: URI.

    This is how the static drawing goes into HTML outputs: sanitizers that
    drop inline ``<svg>`` (JupyterLab for an untrusted notebook keeps only the
    text of its elements) keep an image, and the image cannot restyle the page.
    """
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/svg+xml;base64,{data}" style="max-width: none;"/>'
