"""Where each box goes: one tidy tree layout for both drawings.

Roots at the top, one row per depth, each parent centred over its children,
trees side by side in the drawing's order; every box as wide as its text.
The interactive drawing is given these positions (as fixed vis-network
``x``/``y``, physics off), and the static SVG draws at them, so both show the
same picture, and the same data always gives the same picture.

The summary view (one node per tree) is laid out as a grid instead.
"""

from __future__ import annotations

import dataclasses

from workbench.viz import style
from workbench.viz.model import Drawing, DrawNode

H_GAP = 24  # between neighbouring boxes
TREE_GAP = 48  # between trees
V_GAP = 40  # between rows
SUMMARY_V_GAP = 90  # rows of the summary grid: room for the sharing arcs


@dataclasses.dataclass(frozen=True)
class Box:
    x: float  # centre
    y: float  # centre
    width: float
    height: float

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def top(self) -> float:
        return self.y - self.height / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height / 2


def box_size(node: DrawNode) -> tuple[float, float]:
    lines = node.label_lines()
    # + one space of the interactive drawing's line-height spacer (see interactive.SPACER)
    width = max(len(line) for line in lines) * style.CHAR_WIDTH + 0.62 * style.LINE_HEIGHT + 2 * style.BOX_MARGIN
    height = len(lines) * style.LINE_HEIGHT + 2 * style.BOX_MARGIN
    if node.kind == "consumer":
        width += 2 * style.BOX_MARGIN  # an ellipse needs more room than a box
    return round(width), round(height)


def layout(drawing: Drawing) -> dict[str, Box]:
    """Each node's box, the drawing's top-left corner at (0, 0)."""
    sizes = {n.id: box_size(n) for n in drawing.nodes}
    centres = _grid(drawing, sizes) if drawing.summary else _tree(drawing, sizes)
    left = min(x - sizes[i][0] / 2 for i, (x, _) in centres.items()) if centres else 0
    top = min(y - sizes[i][1] / 2 for i, (_, y) in centres.items()) if centres else 0
    return {
        n.id: Box(round(centres[n.id][0] - left, 1), round(centres[n.id][1] - top, 1), *sizes[n.id])
        for n in drawing.nodes
    }


def _tree(drawing: Drawing, sizes) -> dict[str, tuple[float, float]]:
    providers = [n for n in drawing.nodes if n.kind != "consumer"]
    children: dict[str, list[str]] = {}
    for n in providers:
        if n.parent is not None:
            children.setdefault(n.parent, []).append(n.id)
    span: dict[str, float] = {}

    def width(node_id: str) -> float:  # of the subtree, children first (post-order)
        if node_id not in span:
            kids = children.get(node_id, [])
            below = sum(width(k) for k in kids) + H_GAP * max(len(kids) - 1, 0)
            span[node_id] = max(sizes[node_id][0], below)
        return span[node_id]

    # Row centres: each row as tall as its tallest box.
    levels = sorted({n.level for n in drawing.nodes})
    row_y, top = {}, 0.0
    for level in levels:
        height = max(sizes[n.id][1] for n in drawing.nodes if n.level == level)
        row_y[level] = top + height / 2
        top += height + V_GAP

    x: dict[str, float] = {}

    def place(node_id: str, left: float) -> None:
        x[node_id] = left + width(node_id) / 2
        kids = children.get(node_id, [])
        below = sum(width(k) for k in kids) + H_GAP * max(len(kids) - 1, 0)
        cursor = left + (width(node_id) - below) / 2
        for kid in kids:
            place(kid, cursor)
            cursor += width(kid) + H_GAP

    cursor = 0.0
    for n in providers:
        if n.parent is None:
            place(n.id, cursor)
            cursor += width(n.id) + TREE_GAP

    # Consumers: under the providers they use, pushed apart where they would overlap.
    holders: dict[str, list[str]] = {}
    for edge in drawing.edges:
        if edge.kind == "consumes":
            holders.setdefault(edge.target, []).append(edge.source)
    consumers = [n for n in drawing.nodes if n.kind == "consumer"]
    wanted = {c.id: sum(x[p] for p in holders[c.id]) / len(holders[c.id]) for c in consumers}
    right_edge: dict[int, float] = {}
    for c in sorted(consumers, key=lambda c: (c.level, wanted[c.id], c.id)):
        half = sizes[c.id][0] / 2
        x[c.id] = max(wanted[c.id], right_edge.get(c.level, float("-inf")) + H_GAP + half)
        right_edge[c.level] = x[c.id] + half
    return {n.id: (x[n.id], row_y[n.level]) for n in drawing.nodes}


def _grid(drawing: Drawing, sizes) -> dict[str, tuple[float, float]]:
    cells = {n.id: n.grid or (0, i) for i, n in enumerate(drawing.nodes)}
    rows = sorted({r for r, _ in cells.values()})
    cols = sorted({c for _, c in cells.values()})
    col_width = {c: max(sizes[i][0] for i, (_, cc) in cells.items() if cc == c) for c in cols}
    row_height = {r: max(sizes[i][1] for i, (rr, _) in cells.items() if rr == r) for r in rows}
    col_x, left = {}, 0.0
    for c in cols:
        col_x[c] = left + col_width[c] / 2
        left += col_width[c] + TREE_GAP
    row_y, top = {}, 0.0
    for r in rows:
        row_y[r] = top + row_height[r] / 2
        top += row_height[r] + SUMMARY_V_GAP
    return {i: (col_x[c], row_y[r]) for i, (r, c) in cells.items()}
