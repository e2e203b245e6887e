"""The drawing, before it is drawn: which boxes, which lines, what is highlighted.

:func:`build_drawing` turns :class:`~workbench.viz.data.TreeData` (and an
optional allocation candidate) into a :class:`Drawing`: nodes and edges with
their roles. The interactive (pyvis) drawing, the static SVG and the text
summary are all rendered from it, so they always agree.

Above ``threshold`` providers the drawing is a *summary*: one node per tree
(its root), the providers below it counted and their usage added up.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from workbench.graphdb.db import Graph
from workbench.engine.errors import BadRequest, Conflict
from workbench.engine.why_not import first_reasons
from workbench.viz import style
from workbench.viz.data import TreeData, read_tree_data

DEFAULT_THRESHOLD = 150  # providers; above this the drawing is a summary
SUMMARY_COLUMNS = 6  # trees per row in the summary view
MORE_TREES = "more-trees"  # node id of the folded trees in the summary view
SHARING_EDGE_LIMIT = 8  # a sharing provider serving more drawn trees: only used links are drawn
LONG_NAME = 16  # a longer class name gets a label line of its own
SHORT_REASON = 30  # characters of the why-not reason written in the box (the hover text has all of it)

Candidate = dict[str, dict[str, int]]  # provider uuid -> resource class -> amount


@dataclasses.dataclass(frozen=True)
class Usage:
    resource_class: str
    used: int
    capacity: int
    taken: int = 0  # what the highlighted candidate takes

    @property
    def fraction(self) -> float:
        return 1.0 if self.capacity <= 0 else self.used / self.capacity


@dataclasses.dataclass(frozen=True)
class DrawNode:
    id: str  # the provider (or root, or consumer) uuid; stable across renders
    name: str
    kind: str  # "provider", "tree" (a whole tree, summary view), "more", "consumer"
    level: int  # 0 at the top
    parent: str | None
    usages: tuple[Usage, ...] = ()
    traits: tuple[str, ...] = ()
    aggregates: tuple[str, ...] = ()
    sharing: bool = False
    role: str = "plain"  # "plain" (no candidate), "used" (by the candidate), "faded"
    folded: int = 0  # providers drawn inside this node (summary view)
    extra: tuple[str, ...] = ()  # more lines for the hover text
    grid: tuple[int, int] | None = None  # (row, column) in the summary view
    why_not: str = ""  # the first reason it is in no candidate of the request explained

    @property
    def highlighted(self) -> bool:
        return self.role == "used"

    @property
    def taken(self) -> dict[str, int]:
        return {u.resource_class: u.taken for u in self.usages if u.taken}

    @property
    def fraction(self) -> float:
        """How full the fullest class is (0 if there is no inventory)."""
        return max((u.fraction for u in self.usages), default=0.0)

    def usage_rows(self) -> list[tuple[str | None, str, Usage]]:
        """Per class ``(heading, text, usage)``: the aligned text ``VCPU  2/4``
        that the bar follows; a long class name gets a line of its own
        (``heading``) and the numbers go under it."""
        short = [u for u in self.usages if len(u.resource_class) <= LONG_NAME]
        width = max((len(u.resource_class) for u in short), default=0)
        numbers = [f"{u.used}/{u.capacity}" for u in self.usages]
        nwidth = max((len(n) for n in numbers), default=0)
        rows = []
        for u, n in zip(self.usages, numbers):
            if len(u.resource_class) > LONG_NAME:
                rows.append((u.resource_class, f"  {n:>{nwidth}}", u))
            else:
                rows.append((None, f"{u.resource_class:<{width}} {n:>{nwidth}}", u))
        return rows

    def label_lines(self) -> list[str]:
        """The box text: the name, then per class ``used/capacity``, a bar and what is taken."""
        lines = [self.name]
        if self.kind == "consumer":
            return lines + list(self.extra[:1])
        for heading, text, usage in self.usage_rows():
            if heading:
                lines.append(heading)
            line = f"{text} {style.usage_bar(usage.used, usage.taken, usage.capacity)}"
            if usage.taken:
                line += f" +{usage.taken}"
            lines.append(line)
        if self.kind == "more":
            lines.append(f"{self.folded} providers in all")
        elif self.folded:
            lines.append(f"+ {self.folded} provider{'s' if self.folded != 1 else ''} below")
        if self.why_not:  # "numa0 has no VGPU inventory": the box already says numa0
            short = self.why_not.removeprefix(f"{self.name} ")
            lines.append(f"✗ {short if len(short) <= SHORT_REASON else short[:SHORT_REASON - 1] + '…'}")
        return lines

    def hover_lines(self) -> list[str]:
        """The hover text: everything about the node, one fact a line."""
        if self.kind == "consumer":
            return [f"consumer {self.id}", *self.extra]
        lines = [self.name]
        if self.kind == "provider":
            lines.append(f"uuid {self.id}")
        lines.extend(self.extra)
        if self.why_not:
            lines.append(f"why not: {self.why_not}")
        for u in self.usages:
            taken = f"; the candidate takes {u.taken}" if u.taken else ""
            lines.append(f"{u.resource_class}: {u.used} used of {u.capacity}{taken}")
        if self.kind != "more":
            lines.append("traits: " + (", ".join(self.traits) or "none"))
            lines.append("aggregates: " + (", ".join(self.aggregates) or "none"))
        return lines


@dataclasses.dataclass(frozen=True)
class DrawEdge:
    source: str
    target: str
    kind: str  # "parent", "shares" (sharing provider -> a tree it serves), "consumes"
    label: str = ""
    role: str = "plain"  # "plain", "used", "faded"


@dataclasses.dataclass(frozen=True)
class Drawing:
    title: str
    nodes: tuple[DrawNode, ...]
    edges: tuple[DrawEdge, ...]
    summary: bool
    notes: tuple[str, ...]  # said under the title (summary view, candidate, ...)
    candidate: Candidate | None
    providers: int  # providers in the drawn trees
    trees: int

    def node(self, node_id: str) -> DrawNode:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    @property
    def highlighted(self) -> list[DrawNode]:
        return [n for n in self.nodes if n.highlighted]


# -- candidates ---------------------------------------------------------------------


def normalise_candidate(candidate: Mapping | None) -> Candidate | None:
    """A candidate in any of the shapes the workbench passes around, as
    ``{provider uuid: {resource class: amount}}``.

    Accepted: one ``allocation_requests`` entry (``{"allocations": {rp:
    {"resources": {...}}}, "mappings": ...}``), its ``allocations`` alone, or
    the plain ``{rp: {rc: n}}`` that ``claim`` returns.
    """
    if candidate is None:
        return None
    if "allocations" in candidate and isinstance(candidate["allocations"], Mapping):
        candidate = candidate["allocations"]
    result: Candidate = {}
    for rp, resources in candidate.items():
        if isinstance(resources, Mapping) and isinstance(resources.get("resources"), Mapping):
            resources = resources["resources"]
        if not isinstance(resources, Mapping):
            raise ValueError(f"candidate: expected resource amounts for provider {rp}, got {resources!r}")
        result[str(rp)] = {str(rc): int(n) for rc, n in resources.items()}
    return result


def pick_candidate(graph: Graph, query: str, pick: int = 0) -> dict:
    """Allocation request number ``pick`` for the Placement query ``query``."""
    from workbench.engine.candidates import find

    found = find(graph, query)["allocation_requests"]
    if not found:
        raise Conflict(f"No allocation candidates for {query!r}: nothing to highlight")
    if not 0 <= pick < len(found):
        raise BadRequest(f"--pick {pick} is out of range: there are {len(found)} candidates (0 to {len(found) - 1})")
    return found[pick]


# -- building the drawing ------------------------------------------------------------


def drawing_for(
    graph: Graph,
    candidate: Mapping | str | None = None,
    roots: Iterable[str] | None = None,
    *,
    pick: int = 0,
    consumers: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    title: str | None = None,
    why_not: str | None = None,
) -> Drawing:
    """Read the graph and build its drawing. ``candidate`` may be an allocation
    request or a Placement query string (then its candidate number ``pick``).
    ``why_not`` (a Placement query string) marks each provider in none of its
    candidates with the first reason (:func:`workbench.engine.why_not.first_reasons`)."""
    if isinstance(candidate, str):
        candidate = pick_candidate(graph, candidate, pick)
    reasons = first_reasons(graph, why_not) if why_not is not None else None
    data = read_tree_data(graph, consumers=consumers)
    return build_drawing(
        data, candidate, roots, consumers=consumers, threshold=threshold, title=title, reasons=reasons
    )


def build_drawing(
    data: TreeData,
    candidate: Mapping | None = None,
    roots: Iterable[str] | None = None,
    *,
    consumers: bool = False,
    threshold: int = DEFAULT_THRESHOLD,
    title: str | None = None,
    reasons: Mapping[str, str] | None = None,
) -> Drawing:
    """The drawing of ``data``: the trees of ``roots`` (names or uuids of any
    provider in them; default all), with ``candidate`` highlighted and each
    provider in ``reasons`` (uuid -> why it is in no candidate) faded and
    marked with its reason (full view only)."""
    chosen = normalise_candidate(candidate)
    by_uuid = data.by_uuid
    if chosen:
        if unknown := sorted(set(chosen) - set(by_uuid)):
            raise ValueError(f"candidate uses provider {unknown[0]}, which is not in the graph")
    order = _tree_order(data, _selected_roots(data, roots, chosen), chosen)
    in_drawing = set(order)
    providers = [p for root in order for p in data.trees[root]]
    summary = len(providers) > threshold
    notes = []
    if not providers:
        notes.append("No resource providers to draw: load a scenario first (workbench load FILE).")
    if chosen:
        notes.append("candidate: " + describe_candidate(chosen, {p.uuid: p.name for p in data.providers}))
    if summary:
        notes.append(
            f"Summary view: {len(providers)} providers in {len(order)} trees are more than the "
            f"{threshold}-provider limit of the full drawing, so each tree is drawn as one node "
            "(its root), with the providers below it counted and their used/capacity added up."
        )
        nodes, edges = _summary(data, order, chosen, threshold, notes)
        if consumers:
            notes.append("Consumers are not drawn in the summary view.")
        if reasons:
            notes.append("Why-not reasons are marked in the full view only: draw fewer trees (roots=...) to see them.")
    else:
        nodes, edges = _full(data, providers, chosen, notes, reasons or {})
        if marked := sum(p.uuid in (reasons or {}) for p in providers):
            notes.append(f"✗ marks the {marked} provider(s) in no candidate, with the first reason why "
                         "(hover for all of it).")
        if consumers:
            _add_consumers(data, in_drawing, chosen, nodes, edges)
    if title is None:
        title = f"Provider trees: {len(providers)} provider{'s' if len(providers) != 1 else ''} in {len(order)} tree{'s' if len(order) != 1 else ''}"
    return Drawing(title, tuple(nodes), tuple(edges), summary, tuple(notes), chosen, len(providers), len(order))


def describe_candidate(chosen: Candidate, names: Mapping[str, str]) -> str:
    """``numa0 takes VCPU 1; fpga0 takes FPGA 1`` (sorted by provider name)."""
    parts = sorted(
        f"{names.get(rp, rp)} takes " + ", ".join(f"{rc} {n}" for rc, n in sorted(resources.items()))
        for rp, resources in chosen.items()
    )
    return "; ".join(parts) if parts else "(no allocations)"


def _selected_roots(data: TreeData, roots: Iterable[str] | None, chosen: Candidate | None) -> set[str]:
    all_roots = {p.uuid for p in data.roots}
    if roots is None:
        return all_roots
    if isinstance(roots, str):
        roots = [roots]
    lookup = {key: p.root for p in data.providers for key in (p.uuid, p.name)}
    selected = set()
    for key in roots:
        if key not in lookup:
            known = ", ".join(p.name for p in data.roots)
            raise ValueError(f"no provider {key!r} in the graph (its roots are: {known})")
        selected.add(lookup[key])
    # The sharing providers serving the chosen trees, and the trees the candidate uses, come along.
    selected |= {data.by_uuid[link.provider].root for link in data.sharing if link.root in selected}
    selected |= {data.by_uuid[rp].root for rp in chosen or {}}
    return selected


def _tree_order(data: TreeData, selected: set[str], chosen: Candidate | None = None) -> list[str]:
    """Roots by name, each sharing provider's tree placed just before the first
    tree it serves (so that its dashed links stay short). With a candidate, the
    trees it uses come first, a sharing one just before the tree it serves for
    the candidate: what the candidate uses sits together, at the start, and so
    fits the first view of a drawing that is wider than the screen."""
    used_trees = {data.by_uuid[rp].root for rp in chosen or {} if rp in data.by_uuid}
    roots = [
        p.uuid for p in sorted(data.roots, key=lambda p: (p.uuid not in used_trees, p.name)) if p.uuid in selected
    ]
    serves: dict[str, list[str]] = {}
    for link in data.sharing:
        serves.setdefault(data.by_uuid[link.provider].root, []).append(link.root)
    movers = [r for r in roots if any(t in selected and t != r for t in serves.get(r, []))]
    moving = set(movers)
    order = [r for r in roots if r not in moving]
    position = {r: i for i, r in enumerate(order)}
    before: dict[int, list[str]] = {}  # index in `order` -> sharing trees to put just before it
    for mover in movers:
        targets = [position[t] for t in serves[mover] if t in position]
        targets = [i for i in targets if order[i] in used_trees] or targets
        before.setdefault(min(targets) if targets else len(order), []).append(mover)
    result = []
    for i, root in enumerate(order + [None]):
        result.extend(before.get(i, []))
        if root is not None:
            result.append(root)
    return result


def _role(used: bool, chosen: Candidate | None) -> str:
    if chosen is None:
        return "plain"
    return "used" if used else "faded"


def _usages(inventories, taken: Mapping[str, int]) -> tuple[Usage, ...]:
    return tuple(Usage(i.resource_class, i.used, i.capacity, taken.get(i.resource_class, 0)) for i in inventories)


def _full(data: TreeData, providers, chosen: Candidate | None, notes: list[str], reasons: Mapping[str, str]):
    by_uuid = data.by_uuid
    nodes, edges = [], []
    drawn = {p.uuid for p in providers}
    for p in providers:
        taken = (chosen or {}).get(p.uuid, {})
        extra = []
        if p.parent:
            extra.append(f"parent: {by_uuid[p.parent].name}")
        if p.sharing:
            extra.append(_serves_line(data, p.uuid))
        nodes.append(
            DrawNode(
                id=p.uuid, name=p.name, kind="provider", level=p.depth, parent=p.parent,
                usages=_usages(p.inventories, taken), traits=p.traits, aggregates=p.aggregates,
                sharing=p.sharing, extra=tuple(extra), why_not=reasons.get(p.uuid, ""),
                role="faded" if chosen is None and p.uuid in reasons else _role(bool(taken), chosen),
            )
        )
        if p.parent:
            edges.append(DrawEdge(p.parent, p.uuid, "parent", role=_role(bool(taken), chosen)))
    links = [(link.provider, link.root, link) for link in data.sharing if link.provider in drawn and link.root in drawn]
    edges.extend(_sharing_edges(data, links, chosen, notes))
    return nodes, edges


def _summary(data: TreeData, order: list[str], chosen: Candidate | None, threshold: int, notes: list[str]):
    by_uuid = data.by_uuid
    members = data.trees
    used_roots = {by_uuid[rp].root for rp in chosen or {}}
    # Too many trees even for the summary: keep the ones the candidate uses
    # (and their sharing providers), then the first ones in order; add up the rest.
    keep = list(order)
    if len(order) > threshold:
        wanted = set(used_roots) | {
            by_uuid[link.provider].root for link in data.sharing if link.root in used_roots
        }
        room = max(threshold - 1 - len(wanted), 0)
        extra = [r for r in order if r not in wanted][:room]
        keep = [r for r in order if r in wanted or r in extra]
    kept = set(keep)
    nodes, edges = [], []
    for i, root in enumerate(keep):
        tree = members[root]
        nodes.append(
            DrawNode(
                id=root, name=by_uuid[root].name, kind="tree", level=0, parent=None,
                usages=_added_up(tree, chosen), traits=by_uuid[root].traits,
                aggregates=tuple(sorted({a for p in tree for a in p.aggregates})),
                sharing=any(p.sharing for p in tree), role=_role(root in used_roots, chosen),
                folded=len(tree) - 1,
                extra=(f"a tree of {len(tree)} providers, drawn as one",)
                + tuple(_serves_line(data, p.uuid) for p in tree if p.sharing),
                grid=divmod(i, SUMMARY_COLUMNS),
            )
        )
    folded = [r for r in order if r not in kept]
    if folded:
        tree = [p for r in folded for p in members[r]]
        nodes.append(
            DrawNode(
                id=MORE_TREES, name=f"{len(folded)} more trees", kind="more", level=0, parent=None,
                usages=_added_up(tree, chosen), role=_role(False, chosen), folded=len(tree),
                extra=(f"{len(folded)} trees with {len(tree)} providers, added up",),
                grid=divmod(len(keep), SUMMARY_COLUMNS),
            )
        )
        notes.append(
            f"Only {len(keep)} of {len(order)} trees are drawn; the other {len(folded)} are added up "
            f"in the node '{len(folded)} more trees'."
        )
    links = []
    for link in data.sharing:
        source = by_uuid[link.provider].root
        target = link.root if link.root in kept else MORE_TREES
        if source in kept and (target != MORE_TREES or folded):
            links.append((source, target, link))
    edges.extend(_sharing_edges(data, links, chosen, notes))
    return nodes, edges


def _serves_line(data: TreeData, provider: str) -> str:
    names = sorted(data.by_uuid[link.root].name for link in data.sharing if link.provider == provider)
    aggregates = sorted({a for link in data.sharing if link.provider == provider for a in link.aggregates})
    if not names:
        return "shares its inventory with no other tree"
    shown = ", ".join(names[:SHARING_EDGE_LIMIT])
    if len(names) > SHARING_EDGE_LIMIT:
        shown += f" and {len(names) - SHARING_EDGE_LIMIT} more"
    return f"shares its inventory with {len(names)} tree{'s' if len(names) != 1 else ''} ({shown}) via {', '.join(aggregates)}"


def _sharing_edges(data: TreeData, links, chosen: Candidate | None, notes: list[str]) -> list[DrawEdge]:
    """Dashed edges from each sharing provider to the trees it serves; a
    provider serving more than SHARING_EDGE_LIMIT drawn trees keeps only the
    edges the candidate uses (a fan of dozens of arcs would hide the trees)."""
    by_uuid = data.by_uuid
    used_roots = {by_uuid[rp].root for rp in chosen or {}}
    fans: dict[str, list] = {}
    for source, target, link in links:
        fans.setdefault(link.provider, []).append((source, target, link))
    edges = []
    for provider, fan in fans.items():
        targets = {target for _, target, _ in fan}
        crowded = len(targets) > SHARING_EDGE_LIMIT
        if crowded:
            notes.append(
                f"{by_uuid[provider].name} shares its inventory with {len(targets)} of the drawn trees; "
                "to keep the drawing readable, only the links the candidate uses are drawn."
            )
        seen = set()
        for source, target, link in fan:
            used = bool(chosen) and provider in chosen and (target in used_roots)
            if (source, target) in seen or (crowded and not used):
                continue
            seen.add((source, target))
            edges.append(DrawEdge(source, target, "shares", "via " + ", ".join(link.aggregates), _role(used, chosen)))
    return edges


def _added_up(providers, chosen: Candidate | None) -> tuple[Usage, ...]:
    totals: dict[str, list[int]] = {}
    for p in providers:
        taken = (chosen or {}).get(p.uuid, {})
        for inv in p.inventories:
            t = totals.setdefault(inv.resource_class, [0, 0, 0])
            t[0] += inv.used
            t[1] += inv.capacity
            t[2] += taken.get(inv.resource_class, 0)
    return tuple(Usage(rc, *totals[rc]) for rc in sorted(totals))


def _add_consumers(data: TreeData, roots: set[str], chosen: Candidate | None, nodes: list, edges: list) -> None:
    level = {n.id: n.level for n in nodes}
    row = max(level.values(), default=-1) + 1  # consumers get a row of their own, under the trees
    for c in data.consumers:
        held = [(rp, rc, n) for rp, rc, n in c.allocations if rp in level]
        if not held:
            continue
        nodes.append(
            DrawNode(
                id=c.uuid, name=f"consumer {c.uuid[:8]}", kind="consumer",
                level=row, parent=None,
                role="faded" if chosen is not None else "plain",
                extra=(f"{c.project} / {c.user}", f"type {c.consumer_type}"),
            )
        )
        by_provider: dict[str, list[str]] = {}
        for rp, rc, n in held:
            by_provider.setdefault(rp, []).append(f"{rc} {n}")
        for rp, amounts in by_provider.items():
            edges.append(DrawEdge(rp, c.uuid, "consumes", ", ".join(amounts), "faded" if chosen is not None else "plain"))
