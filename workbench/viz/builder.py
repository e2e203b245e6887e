"""A request builder: compose a ``GET /allocation_candidates`` request with widgets.

    from workbench.viz.builder import RequestBuilder, SHORT_TIMEOUTS
    graph = Graph.connect(**SHORT_TIMEOUTS)  # a stopped Neo4j is reported at once
    builder = RequestBuilder(graph)          # in a notebook: the widget

The query box at the top takes any Placement query string, verbatim (press
Enter): it is answered as given, and the controls below are filled from it;
parameters that no control shows (``in_tree``, ``required=in:...``,
``member_of=in:...``, ``root_required``, ...) are kept and said so. Changing a
control rewrites the query box. Per request group: amounts per resource class,
required and forbidden traits (comma-separated, Enter to apply) and
``member_of``; granular groups can be added, with ``group_policy`` and
``same_subtree``. Unknown traits and classes are reported beside their group.

Aggregate names are accepted where Placement wants UUIDs (``member_of=demo_agg``
in the query box): they are resolved to UUIDs and a note says so.

It shows the number of candidates, the candidates as a table and the provider
tree with the chosen candidate highlighted. Why not? Each provider in none of
the candidates is faded and marked in the drawing with the first reason
(:func:`workbench.engine.why_not.first_reasons`); choosing one in the "why not"
list shows every reason (:func:`~workbench.engine.why_not.why_not`). A request
with no candidates at all shows the funnel: per group, how many providers are
left after each rule, and where the request ran dry. "Claim" writes that candidate's
allocations for a new consumer (uuid4) of the given project and user. Errors
show inline, Neo4j's included: a failed search clears the old answer, so no
stale result stands beside new input.

Everything can be driven from code too (set a widget's ``value``, or
:meth:`RequestBuilder.ask`; read :attr:`RequestBuilder.query`,
:attr:`~RequestBuilder.count`, :attr:`~RequestBuilder.frame`), and a saved
notebook without the widget state still shows :meth:`RequestBuilder.text` /
:meth:`RequestBuilder.html` (its ``text/plain`` and ``text/html`` representations).

The drawing itself is :mod:`workbench.viz` (this module only arranges it).
"""

from __future__ import annotations

import html
import re
import uuid as uuidlib
from urllib.parse import parse_qsl

import ipywidgets as widgets
import neo4j.exceptions
import pandas as pd

from workbench.graphdb.db import Graph, Neo4jUnavailable
from workbench.engine.allocations import set_allocations
from workbench.engine.candidates import find
from workbench.engine.errors import PlacementError
from workbench.engine.providers import resolve_aggregate_names
from workbench.engine.request import build_query
from workbench.engine.why_not import Explanation, Funnel, funnel, why_not_each
from workbench.report import candidates_frame
from workbench.viz.data import TreeData, Vocabulary, read_tree_data, request_vocabulary
from workbench.viz.interactive import drawing_html
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, build_drawing
from workbench.viz.static import drawing_svg, svg_img

EMPTY_BODY = {"allocation_requests": [], "provider_summaries": {}}
WIDE = {"description_width": "initial"}
ERROR_COLOUR = "#c92a2a"
DRAWING_HEIGHT = 460  # px of the drawing's frame: the inputs and the drawing fit one screen

# Driver settings for a graph behind a widget: a stopped or unreachable Neo4j
# is reported within seconds instead of after the driver's 30 s of retries.
SHORT_TIMEOUTS = {"max_transaction_retry_time": 1.0, "connection_timeout": 2.0, "connection_acquisition_timeout": 3.0}

# What a failing Neo4j raises through the driver.
NEO4J_FAILURES = (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, Neo4jUnavailable, OSError)

# A group's parameters: resources, required, member_of, with the group's suffix.
GROUP_PARAM = re.compile(r"^(resources|required|member_of)([A-Za-z0-9_-]*)$")


class GroupEditor(widgets.VBox):
    """One request group: its suffix, amounts per class, traits and aggregate."""

    def __init__(self, suffix: str, vocabulary: Vocabulary, removable: bool):
        self.vocabulary = vocabulary
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
                value=0, min=0, max=2147483647, description=rc, continuous_update=False,
                style={"description_width": "230px"}, layout=widgets.Layout(width="360px"),
            )
            for rc in vocabulary.resource_classes
        }
        # Plain text, comma-separated: Enter (or leaving the field) applies it,
        # and a name that is not a trait stays visible, reported beside it.
        traits = ", ".join(vocabulary.traits[:3])
        self.required = widgets.Text(
            value="", description="required traits", placeholder=f"e.g. {traits}", continuous_update=False,
            style=WIDE, layout=widgets.Layout(width="49%"),
        )
        self.forbidden = widgets.Text(
            value="", description="forbidden traits", placeholder="comma-separated", continuous_update=False,
            style=WIDE, layout=widgets.Layout(width="49%"),
        )
        self.required.add_class("wb-required")
        self.forbidden.add_class("wb-forbidden")
        self.member_of = widgets.Dropdown(
            options=[("any aggregate", "")] + [(name, agg) for name, agg in vocabulary.aggregates],
            value="", description="member_of", style=WIDE,
        )
        self.problems = widgets.HTML()
        self.problems.add_class("wb-group-problems")
        self.unknown_classes: list[str] = []  # from a pasted query: no control for them
        self.remove = (
            widgets.Button(description="remove group", button_style="warning", layout=widgets.Layout(width="auto"))
            if removable
            else None
        )
        header = [self.suffix, self.member_of] + ([self.remove] if self.remove else [])
        super().__init__(
            [
                widgets.HBox(header),
                widgets.GridBox(
                    list(self.amounts.values()),
                    layout=widgets.Layout(grid_template_columns="repeat(auto-fill, 370px)"),
                ),
                widgets.HBox([self.required, self.forbidden]),
                self.problems,
            ],
            layout=widgets.Layout(border="1px solid #dee2e6", padding="6px", margin="4px 0"),
        )

    def inputs(self) -> list[widgets.Widget]:
        return [self.suffix, *self.amounts.values(), self.required, self.forbidden, self.member_of]

    @staticmethod
    def _names(text: str) -> list[str]:
        return [name.strip() for name in text.split(",") if name.strip()]

    def check(self) -> list[str]:
        """What is wrong with this group's inputs, said plainly (also shown beside the group)."""
        known = set(self.vocabulary.traits)
        problems = [f"unknown resource class {rc}" for rc in self.unknown_classes]
        for field, label in ((self.required, "required"), (self.forbidden, "forbidden")):
            unknown = [t for t in self._names(field.value) if t.lstrip("!") not in known]
            if unknown:
                problems.append(f"{label}: unknown trait{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
        where = f"group '{self.suffix.value}'" if self.suffix.value else "unsuffixed group"
        self.problems.value = "".join(
            f'<div style="color: {ERROR_COLOUR}">{html.escape(where)}: {html.escape(p)}</div>' for p in problems
        )
        return problems

    def params(self) -> list[tuple[str, str]]:
        """This group's part of the query string, Placement's syntax."""
        suffix = self.suffix.value.strip()
        params = []
        amounts = [f"{rc}:{w.value}" for rc, w in self.amounts.items() if w.value > 0]
        resources = ",".join(amounts + self.unknown_classes)
        if resources:
            params.append((f"resources{suffix}", resources))
        traits = self._names(self.required.value) + [f"!{t.lstrip('!')}" for t in self._names(self.forbidden.value)]
        if traits:
            params.append((f"required{suffix}", ",".join(traits)))
        if self.member_of.value:
            params.append((f"member_of{suffix}", self.member_of.value))
        return params

    def fill(self, params: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Set the controls from this group's ``(key, value)`` pairs; return those no control can show."""
        for w in self.amounts.values():
            w.value = 0
        self.required.value = self.forbidden.value = ""
        self.member_of.value = ""
        self.unknown_classes = []
        required, forbidden, left = [], [], []
        aggregates = {agg for _, agg in self.vocabulary.aggregates}
        for key, value in params:
            if key.startswith("resources"):
                for item in self._names(value):
                    rc, _, amount = item.partition(":")
                    if rc in self.amounts and amount.isdigit():
                        self.amounts[rc].value = int(amount)
                    else:
                        self.unknown_classes.append(item)
            elif key.startswith("required") and not value.startswith("in:"):
                for name in self._names(value):
                    (forbidden if name.startswith("!") else required).append(name.lstrip("!"))
            elif key.startswith("member_of") and value in aggregates and not self.member_of.value:
                self.member_of.value = value
            else:
                left.append((key, value))
        self.required.value = ", ".join(required)
        self.forbidden.value = ", ".join(forbidden)
        return left


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
        self.extra: list[tuple[str, str]] = []  # pasted parameters that no control shows
        self.notes: list[str] = []  # aggregate names resolved in a pasted query
        self.explanations: dict[str, Explanation] = {}  # uuid -> why it is in no candidate
        self.funnel: Funnel | None = None  # where a request with no candidates ran dry
        self._data: TreeData | None = None
        self._holding = False

        self.query_box = widgets.Text(
            value="", description="query string", placeholder="resources=VCPU:2,MEMORY_MB:2048&required=HW_NUMA_ROOT",
            continuous_update=False, style=WIDE, layout=widgets.Layout(width="100%"),
        )
        self.query_box.add_class("wb-query")
        self.extra_view = widgets.HTML()
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
        self.limit = widgets.BoundedIntText(
            value=0, min=0, max=100000, description="limit (0: none)", continuous_update=False, style=WIDE
        )

        self.count_view = widgets.HTML()
        self.count_view.add_class("wb-status")
        self.table_view = widgets.HTML(layout=widgets.Layout(max_height="170px", overflow="auto"))
        self.pick = widgets.Dropdown(
            options=[("(no candidates)", -1)], value=-1, description="candidate", style=WIDE,
            layout=widgets.Layout(width="70%"),
        )
        self.view = widgets.ToggleButtons(
            options=[("interactive", "interactive"), ("static", "static")],
            value="interactive" if interactive else "static",
        )
        self.tree_view = widgets.HTML()
        self.funnel_view = widgets.HTML()
        self.why_pick = widgets.Dropdown(
            options=[("(no provider is left out)", "")], value="", description="why not", style=WIDE,
            layout=widgets.Layout(width="70%"),
        )
        self.why_view = widgets.HTML()
        self.project = widgets.Text(value=project, description="project", continuous_update=False)
        self.user = widgets.Text(value=user, description="user", continuous_update=False)
        self.claim_button = widgets.Button(description="claim", button_style="primary", icon="check")
        self.status = widgets.HTML()

        self.add_group("", removable=False)
        self.add_group_button.on_click(lambda _: self.add_group())
        self.query_box.observe(lambda change: self._holding or self.ask(change["new"]), names="value")
        for w in (self.group_policy, self.same_subtree, self.limit):
            w.observe(self._changed, names="value")
        self.pick.observe(lambda _: self._redraw(), names="value")
        self.view.observe(lambda _: self._redraw(), names="value")
        self.why_pick.observe(lambda _: self._explain(), names="value")
        self.claim_button.on_click(lambda _: self.claim())

        super().__init__(
            [
                self.query_box,
                self.extra_view,
                self.count_view,
                self.funnel_view,
                widgets.HBox([self.pick, self.view]),
                self.tree_view,
                self.why_pick,
                self.why_view,
                self.table_view,
                widgets.HBox([self.project, self.user, self.claim_button]),
                self.status,
                widgets.HTML("<b>Request groups</b> (Enter applies a field)"),
                self.groups_box,
                widgets.HBox([self.add_group_button, self.group_policy, self.same_subtree, self.limit]),
            ]
        )
        self.refresh()

    # -- composing ------------------------------------------------------------------
    def add_group(self, suffix: str | None = None, *, removable: bool = True, refresh: bool = True) -> GroupEditor:
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
        if refresh:
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
        return build_query(params + self.extra)

    def ask(self, query: str) -> None:
        """Answer a Placement query string as given (aggregate names resolved to
        UUIDs, with a note), and fill the controls from it."""
        try:
            query, notes = resolve_aggregate_names(self.graph, query)
        except NEO4J_FAILURES:
            notes = []  # the search below reports the failure
        pairs = parse_qsl(query.strip().lstrip("?"), keep_blank_values=True)
        by_group: dict[str, list[tuple[str, str]]] = {}
        wide, extra = {}, []
        for key, value in pairs:
            match = GROUP_PARAM.match(key)
            if match:
                by_group.setdefault(match.group(2), []).append((key, value))
            elif key in ("group_policy", "same_subtree", "limit") and key not in wide:
                wide[key] = value
            else:
                extra.append((key, value))
        self._holding = True
        try:
            for group in [g for g in self.groups if g.remove and g.suffix.value not in by_group]:
                self.groups.remove(group)
            for suffix, params in by_group.items():
                try:
                    group = self.group(suffix)
                except KeyError:
                    group = self.add_group(suffix, refresh=False)
                extra += group.fill(params)
            if "" not in by_group:
                self.group("").fill([])
            self.groups_box.children = tuple(self.groups)
            # A value the control cannot take is kept as given, for Placement to judge.
            policy, limit = wide.get("group_policy", ""), wide.get("limit", "")
            fits_policy = policy in ("", "none", "isolate")
            fits_limit = limit == "" or (limit.isdigit() and int(limit) <= self.limit.max)
            self.group_policy.value = policy if fits_policy else ""
            self.limit.value = int(limit) if limit and fits_limit else 0
            extra += [("group_policy", policy)] * (not fits_policy) + [("limit", limit)] * (not fits_limit)
            self.same_subtree.value = wide.get("same_subtree", "")
            self.extra = extra
        finally:
            self._holding = False
        self.notes = notes
        self.refresh(query=query.strip().lstrip("?"))

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
            self.notes = []
            self.refresh()

    def refresh(self, query: str | None = None) -> None:
        """Ask for candidates again (``query`` as given, else the controls' query) and redraw everything."""
        query = self.query if query is None else query
        # The old answer goes first: whatever happens next, it is never shown beside new input.
        self.body, self.error, self.frame = EMPTY_BODY, None, _empty_frame()
        self.explanations, self.funnel = {}, None
        unreachable = False
        problems = [p for g in self.groups for p in g.check()]
        self._show_extra()
        if not query:
            self.error = "Give an amount of at least one resource class."
        else:
            try:
                self.body = find(self.graph, query)
                self.frame = self._frame()
                self._why_not(query)
            except PlacementError as exc:
                self.error = exc.detail
            except NEO4J_FAILURES as exc:
                self.body, self.frame = EMPTY_BODY, _empty_frame()
                self.error = f"Neo4j did not answer ({type(exc).__name__}): {exc}"
                self._data = None  # the cloud may have changed meanwhile: read it again next time
                unreachable = True
        if problems and not self.error:
            self.error = "; ".join(problems)
        self._holding = True
        try:
            self.query_box.value = query
            options = [(f"{i}: {row}", i) for i, row in enumerate(self.frame["allocations"])] or [
                ("(no candidates)", -1)
            ]
            keep = self.pick.value if any(v == self.pick.value for _, v in options) else options[0][1]
            self.pick.options = options
            self.pick.value = keep
        finally:
            self._holding = False
        if self.error:
            self.count_view.value = f'<span style="color: {ERROR_COLOUR}">{html.escape(self.error)}</span>'
        else:
            self.count_view.value = f"<b>{self.count}</b> allocation candidate{'s' if self.count != 1 else ''}"
        self.table_view.value = self.frame.to_html() if len(self.frame) else ""
        self.funnel_view.value = (
            f"<b>where the search ran dry</b><pre>{html.escape(str(self.funnel))}</pre>" if self.funnel else ""
        )
        self._holding = True
        try:
            left_out = [(f"{e.name}: {e.reasons[0].text}", e.provider)
                        for e in sorted(self.explanations.values(), key=lambda e: e.name)]
            head = ("(choose a faded provider)" if left_out else "(no provider is left out)", "")
            self.why_pick.options = [head, *left_out]
            self.why_pick.value = self.why_pick.value if self.why_pick.value in self.explanations else ""
        finally:
            self._holding = False
        self._explain()
        if unreachable:
            self.tree_view.value = ""  # no drawing of an old state (and no second wait for Neo4j)
        else:
            self._redraw()

    def _show_extra(self) -> None:
        lines = [f"note: {html.escape(note)}" for note in self.notes]
        if self.extra:
            lines.append(
                "kept from the query string (no control for it): "
                + ", ".join(f"<code>{html.escape(k)}={html.escape(v)}</code>" for k, v in self.extra)
            )
        self.extra_view.value = "<br>".join(lines)

    def _why_not(self, query: str) -> None:
        """The providers in no candidate, with their reasons, and with no candidates the funnel.
        Above the drawing's threshold only the funnel: explaining every provider would be slow."""
        if len(self.data.providers) <= self.threshold:
            self.explanations = {e.provider: e for e in why_not_each(self.graph, query) if e.excluded}
        if not self.count:
            self.funnel = funnel(self.graph, query)

    def explain(self, provider: str) -> str:
        """Why ``provider`` (a name or UUID) is in no candidate: what choosing it in the list shows."""
        for e in self.explanations.values():
            if provider in (e.provider, e.name):
                self.why_pick.value = e.provider
                return str(e)
        raise KeyError(f"{provider} is not left out of the candidates (or the query failed)")

    def _explain(self) -> None:
        if self._holding:
            return
        chosen = self.explanations.get(self.why_pick.value)
        self.why_view.value = f"<pre>{html.escape(str(chosen))}</pre>" if chosen else ""

    def _frame(self) -> pd.DataFrame:
        """The candidates, one row each, numbered in Placement's order (the number to pick)."""
        names = {p.uuid: p.name for p in self.data.providers}
        rows = [
            candidates_frame({"allocation_requests": [request]}, names)
            for request in self.body["allocation_requests"]
        ]
        if not rows:
            return _empty_frame()
        frame = pd.concat(rows, ignore_index=True)
        frame.index.name = "pick"
        return frame

    @property
    def data(self) -> TreeData:
        if self._data is None:
            self._data = read_tree_data(self.graph)
        return self._data

    def drawing(self) -> Drawing:
        reasons = {uuid: e.reasons[0].text for uuid, e in self.explanations.items()}
        return build_drawing(self.data, self.candidate, threshold=self.threshold, reasons=reasons)

    def _redraw(self) -> None:
        if self._holding:
            return
        try:
            drawing = self.drawing()
        except NEO4J_FAILURES:
            self.tree_view.value = ""  # no drawing of an old state; the error is shown above
            return
        if self.view.value == "interactive":
            page = html.escape(drawing_html(drawing, height=f"{DRAWING_HEIGHT - 80}px"), quote=True)
            self.tree_view.value = (
                f'<iframe sandbox="allow-scripts" srcdoc="{page}" '
                f'style="width: 100%; height: {DRAWING_HEIGHT}px; border: 1px solid #dee2e6;"></iframe>'
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
        except NEO4J_FAILURES as exc:
            return self._say_error(f"claim failed, Neo4j did not answer ({type(exc).__name__}): {exc}")
        self.last_consumer = consumer
        self._data = None  # usage changed
        self.refresh()
        self.status.value = (
            f'<span style="color: #2b8a3e">claimed {html.escape(describe)} for consumer <code>{consumer}</code> '
            f"({html.escape(project)} / {html.escape(user)})</span>"
        )
        return consumer

    def _say_error(self, message: str) -> None:
        self.status.value = f'<span style="color: {ERROR_COLOUR}">{html.escape(message)}</span>'
        return None

    # -- what a saved notebook shows -----------------------------------------------
    def text(self) -> str:
        lines = [f"Request builder: {self.query or '(empty query)'}"]
        lines += self.notes
        lines.append(self.error or f"{self.count} allocation candidate{'s' if self.count != 1 else ''}")
        if len(self.frame):
            lines.append(self.frame.to_string())
        if self.funnel:
            lines += ["where the search ran dry:", *self.funnel.lines()]
        return "\n".join(lines)

    def html(self) -> str:
        found = f"{self.count} allocation candidate{'s' if self.count != 1 else ''}"
        message = html.escape(self.error) if self.error else found
        table = self.frame.to_html() if len(self.frame) else ""
        table += self.funnel_view.value
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


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(columns=["allocations", "mappings"])
