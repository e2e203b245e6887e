"""The zero-result funnel: where a request with no candidates ran dry.

Per request group, how many providers are left after each rule, in the order
the explanations name them (have the class, min_unit / max_unit / step_size,
room, traits, aggregates), then how many providers (or, for a group spread
over a tree, trees) can serve the whole group by the engine's own search, and
how many candidates the groups make together. The first empty stage is where
the request ran dry. The counts use the same checks as the explanations
(:mod:`.rules`), on the facts of every provider with a requested class.
"""

from __future__ import annotations

import dataclasses

from workbench.graphdb.db import Graph, Reader
from workbench.engine.candidates import CandidateSearch, QueryTrace
from workbench.engine.request import CandidateRequest, RequestGroup, parse
from workbench.engine.why_not import rules
from workbench.engine.why_not.facts import Facts, Probe
from workbench.engine.why_not.rules import aggregates_named, group_label, group_request


@dataclasses.dataclass
class Stage:
    name: str
    count: int
    unit: str = "providers"

    def to_dict(self) -> dict:
        return {"stage": self.name, "count": self.count, "unit": self.unit}


@dataclasses.dataclass
class GroupFunnel:
    suffix: str
    request: str
    stages: list[Stage]

    @property
    def emptied_at(self) -> str | None:
        return next((s.name for s in self.stages if not s.count), None)

    def to_dict(self) -> dict:
        return {"group": self.suffix, "request": self.request, "stages": [s.to_dict() for s in self.stages],
                "emptied_at": self.emptied_at}


@dataclasses.dataclass
class Funnel:
    query: str
    groups: list[GroupFunnel]
    candidates: int
    trace: list[QueryTrace] = dataclasses.field(default_factory=list, repr=False)

    @property
    def emptied_at(self) -> str | None:
        """Where the request ran dry: the first group's empty stage, or the combining of the groups."""
        for g in self.groups:
            if g.emptied_at:
                return f"{group_label(g.suffix)}: {g.emptied_at}"
        return None if self.candidates else "the groups together (group_policy, same_subtree, combined amounts)"

    def to_dict(self) -> dict:
        return {"query": self.query, "groups": [g.to_dict() for g in self.groups], "candidates": self.candidates,
                "emptied_at": self.emptied_at}

    def lines(self) -> list[str]:
        out = []
        for g in self.groups:
            out.append(f"  {group_label(g.suffix)} ({g.request}):")
            out += [f"    {s.count:>6} {s.unit} {s.name}" for s in g.stages]
        out.append(f"  together: {self.candidates} candidate(s)")
        if self.emptied_at:
            out.append(f"  emptied at {self.emptied_at}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def funnel(graph: Graph, query: str | CandidateRequest) -> Funnel:
    """Per group, how many providers pass each stage of the search, and the whole answer's size."""
    request = parse(query) if isinstance(query, str) else query
    trace: list[QueryTrace] = []

    def work(reader: Reader) -> Funnel:
        trace.clear()
        probe = Probe(reader, request, trace)
        facts = probe.load_facts(probe.class_holders() | _trait_holders(probe, request))
        names = probe.load_names(set().union(*(aggregates_named(g) for g in request.groups.values())))
        groups = [GroupFunnel(s, group_request(g), _stages(probe, g, list(facts.values()), names))
                  for s, g in request.groups.items()]
        answer = CandidateSearch(reader, request).run()["allocation_requests"]
        return Funnel(request.query, groups, len(answer))

    result = graph.reading(work)
    result.trace = trace
    return result


def _trait_holders(probe: Probe, request: CandidateRequest) -> set[str]:
    """The providers a resourceless group can start from: those with a trait it requires."""
    return {rp for g in request.groups.values() if not g.resources
            for any_of in g.required for t in any_of for rp in probe.holders[t]}


def _stages(probe: Probe, group: RequestGroup, pool: list[Facts], names: dict[str, str]) -> list[Stage]:
    """The providers left after each rule, in the order the rules are explained."""
    spread = probe.spreads(group)
    amounts = sorted(group.resources.items())
    # Spread over a tree a provider counts if it can give one of the classes; alone it must give them all.
    each = any if spread else all

    def has_class(f: Facts) -> bool:
        return each(not rules.no_inventory(f, rc) for rc, _ in amounts)

    def fits_units(f: Facts) -> bool:
        return each(rc in f.inventories and not rules.unit_rules(f.inventories[rc], n) for rc, n in amounts)

    def has_room(f: Facts) -> bool:
        return each(not rules.inventory_rules(f, rc, n) for rc, n in amounts)

    def has_traits(f: Facts) -> bool:  # spread over a tree, the required traits may be on any provider used
        return not rules.forbidden_traits(f, group) and (spread or not rules.required_traits(f, group))

    def in_aggregates(f: Facts) -> bool:
        return not rules.member_of(f, group, names, spread) + rules.forbidden_aggregates(f, group, names, spread)

    classes = "the class" if len(amounts) == 1 else "one of the classes" if spread else "the classes"
    steps = [
        (f"have {classes}", has_class),
        ("pass min_unit / max_unit / step_size", fits_units),
        ("have room", has_room),
    ] if group.resources else []
    if group.resources or group.required:  # a resourceless group starts from its required traits
        steps.append(("pass the traits" + (" (required ones are counted per tree)" if spread else ""), has_traits))
        steps.append(("pass the aggregates", in_aggregates))
    stages = []
    for name, keep in steps:
        pool = [f for f in pool if keep(f)]
        stages.append(Stage(name, len(pool)))
    # The last stage is the engine's own: who can serve the whole group.
    partials = probe.partials[group.suffix]
    if spread:
        stages.append(Stage("can serve the whole group (in_tree, root_required, every class, required traits)",
                            len({p.anchor for p in partials}), "trees"))
    else:
        stages.append(Stage("can serve the whole group (in_tree, root_required)",
                            len({rp for p in partials for rp in p.providers})))
    return stages
