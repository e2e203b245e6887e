"""A request builder: compose a ``GET /allocation_candidates`` request with widgets.

    from workbench.viz.builder import RequestBuilder
    builder = RequestBuilder(graph)
    builder                                  # in a notebook: the widget

Amounts per resource class, required and forbidden traits and ``member_of``
per request group; granular groups can be added, with ``group_policy`` and
``same_subtree``. As inputs change it shows the equivalent Placement query
string, the number of candidates, the candidates as a table and the provider
tree with the chosen candidate highlighted. "Claim" writes that candidate's
allocations for a new consumer (uuid4) of the given project and user; errors
show inline.

Everything can be driven from code too (set a widget's ``value``; read
:attr:`RequestBuilder.query`, :attr:`~RequestBuilder.count`,
:attr:`~RequestBuilder.frame`), and a saved notebook without the widget state
still shows :meth:`RequestBuilder.text` / :meth:`RequestBuilder.html` (its
``text/plain`` and ``text/html`` representations).

The drawing itself is :mod:`workbench.viz` (this module only arranges it).
"""

from __future__ import annotations

import html
import uuid as uuidlib

import ipywidgets as widgets
import pandas as pd

from workbench.db import Graph
from workbench.engine.allocations import set_allocations
from workbench.engine.candidates import find
from workbench.engine.errors import PlacementError
from workbench.engine.request import build_query
from workbench.report import candidates_frame
from workbench.viz.data import TreeData, Vocabulary, read_tree_data, request_vocabulary
from workbench.viz.interactive import drawing_html
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, build_drawing
from workbench.viz.static import drawing_svg, svg_img

EMPTY_BODY = {"allocation_requests": [], "provider_summaries": {}}
WIDE = {"description_width": "initial"}


class GroupEditor(widgets.VBox):
    """One request group: its suffix, amounts per class, traits and aggregate."""

    def __init__(self, suffix: str, vocabulary: Vocabulary, removable: bool):
        self.suffix = widgets.Text(
            value=suffix,
            description="group suffix" if removable else "unsuffixed group",
            placeholder="e.g. 1 or _CPU",
            disabled=not removable,
            continuous_update=False,
            style=WIDE,
        )
        self.amounts = {
            rc: widgets.BoundedIntText(
                value=0, min=0, max=2147483647, description=rc, style={"description_width": "230px"},
                layout=widgets.Layout(width="360px"),
            )
            for rc in vocabulary.resource_classes
        }
        traits = list(vocabulary.traits)
        self.required = widgets.TagsInput(value=[], allowed_tags=traits, allow_duplicates=False)
        self.forbidden = widgets.TagsInput(value=[], allowed_tags=traits, allow_duplicates=False)
        self.member_of = widgets.Dropdown(
            options=[("any aggregate", "")] + [(name, agg) for name, agg in vocabulary.aggregates],
            value="", description="member_of", style=WIDE,
        )
        self.remove = (
            widgets.Button(description="remove group", button_style="warning", layout=widgets.Layout(width="auto"))
            if removable
            else None
        )
        header = [self.suffix] + ([self.remove] if self.remove else [])
        super().__init__(
            [
                widgets.HBox(header),
                widgets.GridBox(
                    list(self.amounts.values()),
                    layout=widgets.Layout(grid_template_columns="repeat(auto-fill, 370px)"),
                ),
                widgets.HBox([widgets.Label("required traits"), self.required]),
                widgets.HBox([widgets.Label("forbidden traits"), self.forbidden]),
                self.member_of,
            ],
            layout=widgets.Layout(border="1px solid #dee2e6", padding="6px", margin="4px 0"),
        )

    def inputs(self) -> list[widgets.Widget]:
        return [self.suffix, *self.amounts.values(), self.required, self.forbidden, self.member_of]

    def params(self) -> list[tuple[str, str]]:
        """This group's part of the query string, Placement's syntax."""
        suffix = self.suffix.value.strip()
        params = []
        resources = ",".join(f"{rc}:{w.value}" for rc, w in self.amounts.items() if w.value > 0)
        if resources:
            params.append((f"resources{suffix}", resources))
        traits = list(self.required.value) + [f"!{t}" for t in self.forbidden.value]
        if traits:
            params.append((f"required{suffix}", ",".join(traits)))
        if self.member_of.value:
            params.append((f"member_of{suffix}", self.member_of.value))
        return params


class RequestBuilder(widgets.VBox):
    """The request builder widget for one graph (see the module docstring)."""

    def __init__(
        self,
        graph: Graph,
        *,
        project: str = "demo",
        user: str = "demo",
        interactive: bool = True,
        threshold: int = DEFAULT_THRESHOLD,
    ):
        self.graph = graph
        self.threshold = threshold
        self.vocabulary = request_vocabulary(graph)
        self.body: dict = EMPTY_BODY
        self.error: str | None = None
        self.last_consumer: str | None = None
        self._data: TreeData | None = None
        self._holding = False

        self.groups: list[GroupEditor] = []
        self.groups_box = widgets.VBox()
        self.add_group_button = widgets.Button(
            description="add a granular group", icon="plus", layout=widgets.Layout(width="auto")
        )
        self.group_policy = widgets.Dropdown(
            options=[("(not set)", ""), ("none", "none"), ("isolate", "isolate")], value="",
            description="group_policy", style=WIDE,
        )
        self.same_subtree = widgets.Text(
            value="", description="same_subtree", placeholder="_CPU,_FPGA", continuous_update=False, style=WIDE
        )
        self.limit = widgets.BoundedIntText(value=0, min=0, max=100000, description="limit (0: none)", style=WIDE)

        self.query_view = widgets.HTML()
        self.count_view = widgets.HTML()
        self.table_view = widgets.HTML()
        self.pick = widgets.Dropdown(options=[("(no candidates)", -1)], value=-1, description="candidate", style=WIDE)
        self.view = widgets.ToggleButtons(
            options=[("interactive", "interactive"), ("static", "static")],
            value="interactive" if interactive else "static",
        )
        self.tree_view = widgets.HTML()
        self.project = widgets.Text(value=project, description="project", continuous_update=False)
        self.user = widgets.Text(value=user, description="user", continuous_update=False)
        self.claim_button = widgets.Button(description="claim", button_style="primary", icon="check")
        self.status = widgets.HTML()

        self.add_group("", removable=False)
        self.add_group_button.on_click(lambda _: self.add_group())
        for w in (self.group_policy, self.same_subtree, self.limit):
            w.observe(self._changed, names="value")
        self.pick.observe(lambda _: self._redraw(), names="value")
        self.view.observe(lambda _: self._redraw(), names="value")
        self.claim_button.on_click(lambda _: self.claim())

        super().__init__(
            [
                widgets.HTML("<b>Request groups</b>"),
                self.groups_box,
                self.add_group_button,
                widgets.HBox([self.group_policy, self.same_subtree, self.limit]),
                self.query_view,
                self.count_view,
                self.table_view,
                widgets.HBox([self.pick, self.view]),
                self.tree_view,
                widgets.HBox([self.project, self.user, self.claim_button]),
                self.status,
            ]
        )
        self.refresh()

    # -- composing ------------------------------------------------------------------
    def add_group(self, suffix: str | None = None, *, removable: bool = True) -> GroupEditor:
        """Add a request group (``suffix`` default: the next free number)."""
        if suffix is None:
            used = {g.suffix.value for g in self.groups}
            suffix = next(str(i) for i in range(1, len(used) + 2) if str(i) not in used)
        group = GroupEditor(suffix, self.vocabulary, removable)
        for w in group.inputs():
            w.observe(self._changed, names="value")
        if group.remove:
            group.remove.on_click(lambda _: self.remove_group(group))
        self.groups.append(group)
        self.groups_box.children = tuple(self.groups)
        self.refresh()
        return group

    def remove_group(self, group: GroupEditor) -> None:
        self.groups.remove(group)
        self.groups_box.children = tuple(self.groups)
        self.refresh()

    def group(self, suffix: str = "") -> GroupEditor:
        for g in self.groups:
            if g.suffix.value == suffix:
                return g
        raise KeyError(suffix)

    @property
    def query(self) -> str:
        """The Placement query string the inputs amount to."""
        params = [p for g in self.groups for p in g.params()]
        if self.group_policy.value:
            params.append(("group_policy", self.group_policy.value))
        if self.same_subtree.value.strip():
            params.append(("same_subtree", self.same_subtree.value.strip()))
        if self.limit.value:
            params.append(("limit", str(self.limit.value)))
        return build_query(params)

    @property
    def count(self) -> int:
        return len(self.body["allocation_requests"])

    @property
    def candidate(self) -> dict | None:
        """The chosen allocation request (an ``allocation_requests`` entry)."""
        found = self.body["allocation_requests"]
        return found[self.pick.value] if 0 <= self.pick.value < len(found) else None

    # -- answering ------------------------------------------------------------------
    def _changed(self, _change=None) -> None:
        if not self._holding:
            self.refresh()

    def refresh(self) -> None:
        """Ask for candidates again and redraw everything."""
        query = self.query
        self.error = None
        if not query:
            self.body = EMPTY_BODY
            self.error = "Give an amount of at least one resource class."
        else:
            try:
                self.body = find(self.graph, query)
            except PlacementError as exc:
                self.body, self.error = EMPTY_BODY, exc.detail
        self.frame = self._frame()
        self.query_view.value = f"<b>query</b> <code>{html.escape(query or '(empty)')}</code>"
        if self.error:
            self.count_view.value = f'<span style="color: #c92a2a">{html.escape(self.error)}</span>'
        else:
            self.count_view.value = f"<b>{self.count}</b> allocation candidate{'s' if self.count != 1 else ''}"
        self.table_view.value = self.frame.to_html() if len(self.frame) else ""
        options = [(f"{i}: {row}", i) for i, row in enumerate(self.frame["allocations"])] or [("(no candidates)", -1)]
        keep = self.pick.value if any(v == self.pick.value for _, v in options) else options[0][1]
        self._holding = True
        try:
            self.pick.options = options
            self.pick.value = keep
        finally:
            self._holding = False
        self._redraw()

    def _frame(self) -> pd.DataFrame:
        """The candidates, one row each, numbered in Placement's order (the number to pick)."""
        names = {p.uuid: p.name for p in self.data.providers}
        rows = [
            candidates_frame({"allocation_requests": [request]}, names)
            for request in self.body["allocation_requests"]
        ]
        if not rows:
            return pd.DataFrame(columns=["allocations", "mappings"])
        frame = pd.concat(rows, ignore_index=True)
        frame.index.name = "pick"
        return frame

    @property
    def data(self) -> TreeData:
        if self._data is None:
            self._data = read_tree_data(self.graph)
        return self._data

    def drawing(self) -> Drawing:
        return build_drawing(self.data, self.candidate, threshold=self.threshold)

    def _redraw(self) -> None:
        if self._holding:
            return
        drawing = self.drawing()
        if self.view.value == "interactive":
            page = html.escape(drawing_html(drawing, height="560px"), quote=True)
            self.tree_view.value = (
                f'<iframe sandbox="allow-scripts" srcdoc="{page}" '
                'style="width: 100%; height: 660px; border: 1px solid #dee2e6;"></iframe>'
            )
        else:
            self.tree_view.value = f'<div style="overflow-x: auto">{drawing_svg(drawing)}</div>'

    # -- claiming ---------------------------------------------------------------------
    def claim(self) -> str | None:
        """Claim the chosen candidate for a new consumer; return its uuid (None on error)."""
        candidate = self.candidate
        if candidate is None:
            return self._say_error("There is no candidate to claim.")
        project, user = self.project.value.strip(), self.user.value.strip()
        if not project or not user:
            return self._say_error("A claim needs a project and a user.")
        allocations = {rp: dict(v["resources"]) for rp, v in candidate["allocations"].items()}
        describe = f"candidate {self.pick.value}"
        consumer = str(uuidlib.uuid4())
        try:
            set_allocations(self.graph, consumer, allocations, project, user)
        except PlacementError as exc:
            return self._say_error(f"claim refused ({exc.status} {exc.code}): {exc.detail}")
        self.last_consumer = consumer
        self._data = None  # usage changed
        self.refresh()
        self.status.value = (
            f'<span style="color: #2b8a3e">claimed {html.escape(describe)} for consumer <code>{consumer}</code> '
            f"({html.escape(project)} / {html.escape(user)})</span>"
        )
        return consumer

    def _say_error(self, message: str) -> None:
        self.status.value = f'<span style="color: #c92a2a">{html.escape(message)}</span>'
        return None

    # -- what a saved notebook shows -----------------------------------------------
    def text(self) -> str:
        lines = [f"Request builder: {self.query or '(empty query)'}"]
        lines.append(self.error or f"{self.count} allocation candidate{'s' if self.count != 1 else ''}")
        if len(self.frame):
            lines.append(self.frame.to_string())
        return "\n".join(lines)

    def html(self) -> str:
        message = html.escape(self.error) if self.error else f"{self.count} allocation candidate{'s' if self.count != 1 else ''}"
        table = self.frame.to_html() if len(self.frame) else ""
        return (
            '<div class="workbench-request-builder">'
            f"<p><b>Request builder</b>: <code>{html.escape(self.query or '(empty query)')}</code></p>"
            f"<p>{message}</p>{table}"
            f'<div style="overflow-x: auto">{svg_img(drawing_svg(self.drawing()), alt="provider trees")}</div>'
            "</div>"
        )

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = self.text()
        bundle["text/html"] = self.html()
        return bundle
