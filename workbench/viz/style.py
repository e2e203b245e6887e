"""Colours, fonts and text sizes shared by the interactive and the static drawing.

Both drawings use the same monospaced label text and the same box sizes (see
:mod:`workbench.viz.layout`), so they show the same picture.
"""

from __future__ import annotations

FONT_FACE = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
FONT_SIZE = 14  # px
# Box sizes are estimated from the text: a monospaced glyph is 0.602 em wide
# in DejaVu Sans Mono and Menlo (Consolas is narrower); 0.62 leaves a margin.
CHAR_WIDTH = 0.62 * FONT_SIZE
LINE_HEIGHT = 19
BOX_MARGIN = 10  # px inside the box, each side
BAR_CELLS = 6  # width of the text usage bar, in characters

# The usage bar: used, taken by the highlighted candidate, free.
BAR_USED, BAR_TAKEN, BAR_FREE = "█", "▓", "░"

TEXT = "#212529"
EDGE = "#495057"

# Fill intensity by usage: interpolated from EMPTY (nothing used) to FULL.
EMPTY_FILL = (0xF1, 0xF7, 0xFD)
FULL_FILL = (0x5B, 0x9B, 0xD5)
PROVIDER_BORDER = "#1c5d99"

# Lines that carry the lesson (the sharing link, the candidate) stay at or above
# 4.5:1 against the white page (WCAG AA for text), so a projector keeps them.
SHARING_BORDER = "#237032"  # sharing providers: dashed green border; 6.1:1 on white
SHARING_EDGE = "#237032"

USED_FILL = "#ffd8a8"  # providers the highlighted candidate uses
USED_BORDER = "#c2410c"  # 5.2:1 on white
USED_EDGE = "#c2410c"
USED_BORDER_WIDTH = 4

# Everything else while a candidate is highlighted: the context, readable
# (text 3.7:1 on its fill, lines 3.3:1 on white) but clearly behind the
# candidate (plain text is 14.6:1, and the candidate's lines are thicker).
FADED_FILL = "#f8f9fa"
FADED_BORDER = "#868e96"
FADED_TEXT = "#7a828a"
FADED_EDGE = "#868e96"

CONSUMER_FILL = "#f3f0ff"
CONSUMER_BORDER = "#7048e8"
CONSUMER_EDGE = "#7048e8"

MORE_FILL = "#f1f3f5"  # the "N more trees" node of the summary view
MORE_BORDER = "#868e96"


def usage_fill(fraction: float) -> str:
    """The fill colour for a provider whose fullest class is ``fraction`` used."""
    f = min(max(fraction, 0.0), 1.0)
    r, g, b = (round(e + (u - e) * f) for e, u in zip(EMPTY_FILL, FULL_FILL))
    return f"#{r:02x}{g:02x}{b:02x}"


def usage_bar(used: int, taken: int, capacity: int, cells: int = BAR_CELLS) -> str:
    """``used`` and ``taken`` out of ``capacity`` as a text bar, e.g. ``██▓░░░░░``."""
    if capacity <= 0:
        return BAR_USED * cells
    full = min(cells, round(cells * used / capacity))
    after = min(cells, max(full, round(cells * (used + taken) / capacity)))
    if taken and after == full and after < cells:
        after += 1  # a candidate's share is always visible
    return BAR_USED * full + BAR_TAKEN * (after - full) + BAR_FREE * (cells - after)


def node_colours(role: str, kind: str, sharing: bool, fraction: float) -> tuple[str, str, str, float]:
    """A node's (fill, border, text colour, border width)."""
    if role == "used":
        return USED_FILL, USED_BORDER, TEXT, USED_BORDER_WIDTH
    if role == "faded":
        return FADED_FILL, FADED_BORDER, FADED_TEXT, 1.5
    if kind == "consumer":
        return CONSUMER_FILL, CONSUMER_BORDER, TEXT, 1.5
    if kind == "more":
        return MORE_FILL, MORE_BORDER, TEXT, 1.5
    return usage_fill(fraction), SHARING_BORDER if sharing else PROVIDER_BORDER, TEXT, 2.5 if sharing else 1.5


def edge_colour(kind: str, role: str) -> tuple[str, float]:
    """An edge's (colour, width)."""
    if role == "used":
        return USED_EDGE, 3.5
    if role == "faded":
        return (FADED_EDGE if kind == "parent" else FADED_BORDER), 1.5
    return {"parent": EDGE, "shares": SHARING_EDGE, "consumes": CONSUMER_EDGE}[kind], 1.5


def contrast(foreground: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours (1 to 21)."""

    def luminance(colour: str) -> float:
        channels = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
