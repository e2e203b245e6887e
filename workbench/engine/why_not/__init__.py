"""Why not? Why a provider is in none of the allocation candidates, and where a
request with no candidates at all ran dry.

"No valid host was found" is the question Placement cannot answer: it returns
an empty list, or a list without the provider you expected. Here every filter
is a named rule (:mod:`.rules`) applied to facts read with Cypher
(:mod:`.facts`), and the answer says which rules exclude the provider, in
words with the numbers:

* :func:`why_not` (``workbench candidates QUERY --why-not PROVIDER``): per
  request group, can that provider (or its tree, for the unsuffixed group)
  serve it, and if not, every rule that excludes it; then, if it can serve a
  group but still appears in no candidate, what stops every combination with
  the other groups (a group with nothing in its tree, combined amounts over
  capacity, ``group_policy=isolate``, ``same_subtree``), or ``limit``.
* :func:`funnel`: per group, how many providers have the class, pass the unit
  rules, have room, pass the traits and the aggregates, and how many trees
  (or providers) are left, and which stage emptied the request.

Whether the provider is in a candidate is decided by the engine's own answer
(:mod:`workbench.engine.candidates`), so an explanation is given exactly when
the provider is missing; the rules then say why. ``tests/test_why_not.py``
checks both against the real Placement.

Each reason carries a stable rule name (``Reason.rule``, in ``--json`` too):
``no_inventory``, ``min_unit``, ``max_unit``, ``step_size``, ``parked``
(reserved == total), ``capacity``; ``required_trait``, ``any_of_traits``,
``forbidden_trait``; ``member_of``, ``forbidden_aggregate``; ``in_tree``,
``root_required``, ``resourceless``; for a group spread over a tree
``tree_lacks_class`` and ``sharing``; for the groups together
``other_group``, ``combined_capacity``, ``combined_max_unit``, ``isolate``,
``same_subtree``; and ``limit``. ``unexplained`` means the engine left the
provider out for a reason no rule here names: a bug to report.

    >>> print(why_not(graph, "resources=CUSTOM_BAREMETAL_GOLD:1", "bm3"))  # doctest: +SKIP
    why not bm3 (b3cacd62-...)? it is in none of the 1 candidate(s).
      the unsuffixed group (resources=CUSTOM_BAREMETAL_GOLD:1): bm3 cannot serve it:
        - CUSTOM_BAREMETAL_GOLD: reserved 1 == total 1: parked, nothing can be allocated
"""

from __future__ import annotations

import collections
import dataclasses
import itertools

from workbench.graphdb.db import Graph, Reader
from workbench.engine.candidates import CandidateSearch, PartialRequest, QueryTrace
from workbench.engine.request import CandidateRequest, RequestGroup, parse
from workbench.engine.why_not import rules
from workbench.engine.why_not.facts import Facts, Probe
from workbench.engine.why_not.funnel import Funnel, funnel
from workbench.engine.why_not.rules import Reason, group_label, listed

__all__ = ["Explanation", "Funnel", "GroupVerdict", "Reason", "first_reasons", "funnel", "why_not", "why_not_each"]

# Combinations of the groups' answers looked at when telling why none uses the
# provider: enough for every cloud a person reads, and a bound on the rest.
MAX_COMBINATIONS = 20_000


@dataclasses.dataclass
class GroupVerdict:
    suffix: str
    request: str  # the group as asked, e.g. "resources1=VCPU:2&required1=HW_NUMA_ROOT"
    serves: bool  # the provider (or its tree, for a group spread over a tree) can serve this group alone
    reasons: list[Reason]

    def to_dict(self) -> dict:
        return {
            "group": self.suffix,
            "request": self.request,
            "serves": self.serves,
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclasses.dataclass
class Explanation:
    query: str
    provider: str  # UUID
    name: str
    candidates: int  # in the answer
    used_by: int  # how many of them use the provider
    groups: list[GroupVerdict]
    combined: list[Reason]  # why no whole candidate uses it, though it can serve some group
    tree_used_by: int = 0  # candidates that use other providers of its tree (a root without inventory, say)
    trace: list[QueryTrace] = dataclasses.field(default_factory=list, repr=False)

    @property
    def excluded(self) -> bool:
        return not self.used_by

    @property
    def reasons(self) -> list[Reason]:
        """Every reason, the groups' first."""
        if not self.excluded:
            return []
        return [r for g in self.groups for r in g.reasons] + self.combined

    def to_dict(self) -> dict:
        return {
            "provider": {"uuid": self.provider, "name": self.name},
            "query": self.query,
            "candidates": self.candidates,
            "used_by": self.used_by,
            "tree_used_by": self.tree_used_by,
            "excluded": self.excluded,
            "groups": [g.to_dict() for g in self.groups] if self.excluded else [],
            "combined": [r.to_dict() for r in self.combined],
        }

    def lines(self) -> list[str]:
        head = f"why not {self.name} ({self.provider})?"
        if not self.excluded:
            return [f"{head} it is in {self.used_by} of the {self.candidates} candidate(s): nothing to explain."]
        out = [f"{head} it is in none of the {self.candidates} candidate(s)."]
        if self.tree_used_by:
            out.append(f"  (its tree is, in {self.tree_used_by} of them, through other providers)")
        for g in self.groups:
            if g.serves:
                out.append(f"  {group_label(g.suffix)} ({g.request}): {self.name} can serve it")
            else:
                out.append(f"  {group_label(g.suffix)} ({g.request}): {self.name} cannot serve it:")
                out += [f"    - {r}" for r in g.reasons]
        if self.combined:
            out.append("  the groups together:")
            out += [f"    - {r}" for r in self.combined]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def why_not(graph: Graph, query: str | CandidateRequest, provider: str) -> Explanation:
    """Why ``provider`` (a UUID, or else a name) is in no candidate for ``query``."""
    return why_not_each(graph, query, [provider])[0]


def why_not_each(graph: Graph, query: str | CandidateRequest, providers: list[str] | None = None) -> list[Explanation]:
    """:func:`why_not` for several providers (None: every provider, by name) at the
    cost of one search: what a drawing needs to mark every excluded provider."""
    request = parse(query) if isinstance(query, str) else query
    trace: list[QueryTrace] = []

    def work(reader: Reader) -> list[Explanation]:
        trace.clear()  # a retried transaction starts the trace again
        return _explain(reader, request, providers, trace)

    explanations = graph.reading(work)
    for explanation in explanations:
        explanation.trace = trace
    return explanations


def first_reasons(graph: Graph, query: str | CandidateRequest) -> dict[str, str]:
    """Provider UUID -> the first reason it is in no candidate, for every such provider:
    what a drawing can write beside each faded provider."""
    return {e.provider: e.reasons[0].text for e in why_not_each(graph, query) if e.excluded}


def _explain(reader: Reader, request: CandidateRequest, refs: list[str] | None, trace: list[QueryTrace]):
    everything = dataclasses.replace(request, limit=None)
    probe = Probe(reader, everything, trace)
    uuids = [probe.provider(ref) for ref in refs] if refs is not None else probe.all_providers()
    facts = probe.load_facts(uuids)
    # The answer itself (its queries are the candidate search's, shown by --explain already).
    answer = Usage(probe, CandidateSearch(reader, request).run()["allocation_requests"])
    if request.limit:
        unlimited = Usage(probe, CandidateSearch(reader, everything).run()["allocation_requests"])
    else:
        unlimited = answer
    return [_explanation(probe, facts[uuid], answer, unlimited, request.limit) for uuid in uuids]


class Usage:
    """How many candidates of an answer use each provider (for resources or to meet a
    resourceless group: any group's mappings), and each tree."""

    def __init__(self, probe: Probe, allocation_requests: list[dict]):
        self.candidates = len(allocation_requests)
        self.providers: collections.Counter[str] = collections.Counter()
        self.trees: collections.Counter[str] = collections.Counter()
        for ar in allocation_requests:
            used = {rp for providers in ar["mappings"].values() for rp in providers}
            self.providers.update(used)
            self.trees.update({probe.root_of[rp] for rp in used})


def _explanation(probe: Probe, facts: Facts, answer: Usage, unlimited: Usage, limit: int | None) -> Explanation:
    request = probe.request
    used_by = answer.providers[facts.uuid]
    explanation = Explanation(request.query, facts.uuid, facts.name, answer.candidates, used_by, [], [])
    if not explanation.excluded:
        return explanation
    explanation.tree_used_by = answer.trees[facts.root]
    if using := unlimited.providers[facts.uuid]:  # only with a limit: the others are not cut off
        explanation.combined = [rules.limit_cut(limit, unlimited.candidates, using, facts.name)]
        return explanation
    explanation.groups = [_group_verdict(probe, facts, s, g) for s, g in request.groups.items()]
    served = [g.suffix for g in explanation.groups if g.serves]
    if served:
        explanation.combined = _combination_reasons(probe, facts.uuid, served)
    return explanation


# -- one group -------------------------------------------------------------------------
def _group_verdict(probe: Probe, facts: Facts, suffix: str, group: RequestGroup) -> GroupVerdict:
    text = rules.group_request(group)
    if any(facts.uuid in p.providers for p in probe.partials[suffix]):
        return GroupVerdict(suffix, text, True, [])
    reasons = _provider_reasons(probe, facts, group) or _tree_reasons(probe, facts, group)
    if not reasons:  # the engine leaves it out and no rule here says why: say so, do not guess
        reasons = [Reason("unexplained", f"the engine finds no way to use {facts.name} for this group, "
                                         "and no rule of the explanation says why (please report it)")]
    return GroupVerdict(suffix, text, False, reasons)


def _provider_reasons(probe: Probe, facts: Facts, group: RequestGroup) -> list[Reason]:
    """Every rule that excludes the provider itself from the group."""
    spread, names = probe.spreads(group), probe.load_names(rules.aggregates_named(group) | {group.in_tree} - {None})
    reasons = rules.resourceless_unfiltered(group)
    per_class = [rules.inventory_rules(facts, rc, n) for rc, n in sorted(group.resources.items())]
    # A group spread over a tree needs the provider for one class at least; otherwise for all.
    if not spread or all(per_class):
        reasons += [r for found in per_class for r in found]
    if not spread:  # spread over a tree, the required traits may be on any provider used
        reasons += rules.required_traits(facts, group)
    reasons += rules.forbidden_traits(facts, group)
    reasons += rules.member_of(facts, group, names, root_counts=spread)
    reasons += rules.forbidden_aggregates(facts, group, names, root_counts=spread)
    reasons += rules.in_tree(facts, group, probe.tree_roots.get(group.suffix), names)
    if not _allowed_anchors(probe, facts):
        reasons += rules.root_required(facts.root_name, facts.root_traits, probe.request)
    return reasons


def _anchors(probe: Probe, facts: Facts) -> set[str]:
    """The trees the provider can serve: its own, and for a sharing provider every
    tree in an aggregate with it."""
    return {facts.root} | (probe.anchors.get(facts.uuid, set()) if facts.uuid in probe.sharing else set())


def _allowed_anchors(probe: Probe, facts: Facts) -> set[str]:
    anchors = _anchors(probe, facts)
    return anchors if probe.anchor_roots is None else anchors & probe.anchor_roots


def _tree_reasons(probe: Probe, facts: Facts, group: RequestGroup) -> list[Reason]:
    """For a group spread over a tree: the provider passes on its own, so what is
    missing is in the trees it can serve: a class nobody there gives, or a
    required trait no way of serving the group with it has."""
    if not probe.spreads(group):
        return []
    reasons = []
    anchors = _allowed_anchors(probe, facts)
    names = probe.load_names(anchors)
    if facts.uuid in probe.sharing and anchors == {facts.root}:
        reasons.append(Reason("sharing", f"{facts.name} shares through aggregates, but no other tree is in an "
                                         "aggregate with it"))
    for anchor in sorted(anchors):
        tree = f"the tree of {names[anchor]}"
        lacking = [rc for rc in sorted(group.resources) if not _tree_gives(probe, group, rc, anchor)]
        for rc in lacking:
            if anchor == facts.root and rc in facts.inventories:  # its own numbers for the class
                reasons += rules.inventory_rules(facts, rc, group.resources[rc])
            reasons.append(Reason("tree_lacks_class", f"{tree} cannot give {rc} {group.resources[rc]}: no provider "
                                  "in it, nor a sharing provider in an aggregate with it, has room and passes the "
                                  f"group's rules{_sharing_elsewhere(probe, group, rc, anchor)}"))
        if not lacking:
            reasons += _collective_traits(probe, facts, group, anchor, tree)
    return reasons


def _tree_gives(probe: Probe, group: RequestGroup, rc: str, anchor: str) -> bool:
    """Can the tree of ``anchor`` (with its sharing providers) give this one class of the group?"""
    return any(p.anchor == anchor for p in probe.relaxed_partials(group, rc))


def _sharing_elsewhere(probe: Probe, group: RequestGroup, rc: str, anchor: str) -> str:
    """Sharing providers with room for the class that share no aggregate with the tree."""
    apart = sorted(
        rp for rp, root in probe.capacity[group.suffix, rc]
        if rp in probe.sharing and root != anchor and anchor not in probe.anchors.get(rp, ())
    )
    if not apart:
        return ""
    names = probe.load_names(apart)
    return f" (the sharing provider(s) {listed(names[rp] for rp in apart)} have room but share no aggregate with it)"


def _collective_traits(probe: Probe, facts: Facts, group: RequestGroup, anchor: str, tree: str) -> list[Reason]:
    """Spread over a tree, the providers used must have the required traits between them."""
    ways = [p for p in probe.relaxed_partials(group) if p.anchor == anchor and facts.uuid in p.providers]

    def has(way: PartialRequest, any_of: frozenset[str]) -> bool:
        return any(probe._has(rp, t) for rp in way.providers for t in any_of)

    reasons = []
    for any_of in group.required:
        if not any(has(way, any_of) for way in ways):
            wanted = f"the required trait {listed(any_of)}" if len(any_of) == 1 else f"any of in:{listed(any_of)}"
            reasons.append(Reason("required_trait", f"{wanted} is on none of the providers that could serve "
                                                    f"the group together with {facts.name} in {tree}"))
    if group.required and not reasons and not any(all(has(way, any_of) for any_of in group.required) for way in ways):
        reasons.append(Reason("required_trait", f"each required trait is on some way of serving the group with "
                                                f"{facts.name} in {tree}, but no way has them all"))
    return reasons


# -- the groups together ----------------------------------------------------------------
def _combination_reasons(probe: Probe, uuid: str, served: list[str]) -> list[Reason]:
    """The provider can serve some groups: what stops every whole candidate that uses it.
    Only its trees matter: those it serves a group in (for a sharing provider, maybe several)."""
    suffixes = list(probe.request.groups)
    by_anchor: dict[str, dict[str, list[PartialRequest]]] = {}
    for suffix, found in probe.partials.items():
        for partial in found:
            by_anchor.setdefault(partial.anchor, {}).setdefault(suffix, []).append(partial)
    anchors = sorted({p.anchor for s in served for p in probe.partials[s] if uuid in p.providers})
    nearby = {rp for a in anchors for found in by_anchor[a].values() for p in found for rp in p.providers}
    if probe.request.same_subtrees:
        probe._load_lineages(nearby)
    names = probe.load_names(set(anchors) | nearby)
    reasons: list[Reason] = []
    examined = 0
    for anchor in anchors:
        lists = by_anchor[anchor]
        if missing := [s for s in suffixes if s not in lists]:
            for s in missing:
                nowhere = "" if probe.partials[s] else " (nor in any tree)"
                reasons.append(Reason("other_group", f"{group_label(s)} finds nothing in the tree of "
                                                     f"{names[anchor]}{nowhere}"))
            continue
        for combination in itertools.product(*(lists[s] for s in suffixes)):
            if not any(uuid in p.providers for p in combination):
                continue
            if examined == MAX_COMBINATIONS:
                break
            examined += 1
            problems = _combination_problems(probe, combination, names)
            if not problems:
                return [Reason("unexplained", "a combination using it passes every rule here, yet the engine "
                                              "returns none (please report it)")]
            reasons += problems
    return list(dict.fromkeys(reasons))  # each reason once, in the order found


Combination = tuple[PartialRequest, ...]  # one way to serve each group


def _combination_problems(probe: Probe, combination: Combination, names: dict[str, str]) -> list[Reason]:
    """Every request-wide rule one combination breaks."""
    return (
        _combined_amounts(probe, combination, names)
        + _isolate(probe, combination, names)
        + _same_subtree(probe, combination, names)
    )


def _combined_amounts(probe: Probe, combination: Combination, names: dict[str, str]) -> list[Reason]:
    """Groups that land on one provider add up: the sum must fit its capacity and max_unit."""
    asked: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for partial in combination:
        for rp, rc, amount in partial.resources:
            asked.setdefault((rp, rc), []).append((partial.suffix, amount))
    problems = []
    for (rp, rc), parts in sorted(asked.items()):
        total, limits = sum(n for _, n in parts), probe.inventory[rp, rc]
        together = " and ".join(group_label(s) for s, _ in parts) + f" together ask {total} {rc} of {names[rp]}"
        if limits["used"] + total > limits["capacity"]:
            text = f"{together}: {limits['used']} of {limits['capacity']} used"
            problems.append(Reason("combined_capacity", text))
        if total > limits["max_unit"]:
            problems.append(Reason("combined_max_unit", f"{together}: above max_unit {limits['max_unit']}"))
    return problems


def _isolate(probe: Probe, combination: Combination, names: dict[str, str]) -> list[Reason]:
    """group_policy=isolate: no two suffixed groups on one provider."""
    if probe.request.group_policy != "isolate":
        return []
    granular = [p for p in combination if p.suffix]
    return [
        Reason("isolate", f"group_policy=isolate: {group_label(first.suffix)} and {group_label(second.suffix)} "
                          f"would both use {listed(names[rp] for rp in shared)}")
        for first, second in itertools.combinations(granular, 2)
        if (shared := first.providers & second.providers)
    ]


def _same_subtree(probe: Probe, combination: Combination, names: dict[str, str]) -> list[Reason]:
    """same_subtree: one of the providers chosen for the named groups is an ancestor of all the others."""
    problems = []
    for subtree in probe.request.same_subtrees:
        providers = set().union(*(p.providers for p in combination if p.suffix in subtree))
        if not any(all(top in probe.lineage[rp] for rp in providers) for top in providers):
            problems.append(Reason("same_subtree", f"same_subtree={','.join(sorted(subtree))}: none of "
                                                   f"{listed(names[rp] for rp in providers)} is an ancestor of "
                                                   "all the others"))
    return problems
