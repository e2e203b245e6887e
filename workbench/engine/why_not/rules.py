"""Placement's rules, one small check each, as sentences with their numbers.

A check looks at one provider's facts (see :mod:`.facts`) and one request
group, and returns the reasons that rule excludes it for: an empty list when
the rule lets it through. The explanations and the funnel use the same
checks, so the funnel counts exactly the providers the explanations let
through. The rules about whole trees and about the groups together need the
engine's answers per group; they are in the package's ``__init__``.
"""

from __future__ import annotations

import dataclasses

from workbench.engine.request import CandidateRequest, RequestGroup
from workbench.engine.why_not.facts import Facts, Inventory


@dataclasses.dataclass(frozen=True)
class Reason:
    rule: str  # a short, stable name: "capacity", "step_size", "required_trait", ...
    text: str  # in words, with the numbers

    def to_dict(self) -> dict:
        return {"rule": self.rule, "text": self.text}

    def __str__(self) -> str:
        return self.text


def group_label(suffix: str) -> str:
    return f"group {suffix!r}" if suffix else "the unsuffixed group"


def listed(names) -> str:
    return ", ".join(sorted(names))


# -- one inventory, one amount -------------------------------------------------------
def no_inventory(facts: Facts, rc: str) -> list[Reason]:
    if rc in facts.inventories:
        return []
    return [Reason("no_inventory", f"{facts.name} has no {rc} inventory")]


def unit_rules(inv: Inventory, amount: int) -> list[Reason]:
    """min_unit, max_unit and step_size: the amount of one allocation must fit all three."""
    rc, reasons = inv.resource_class, []
    if amount < inv.min_unit:
        reasons.append(Reason("min_unit", f"{rc}: {amount} asked is below min_unit {inv.min_unit}"))
    if amount > inv.max_unit:
        reasons.append(Reason("max_unit", f"{rc}: {amount} asked is above max_unit {inv.max_unit}"))
    if amount % inv.step_size:
        reasons.append(Reason("step_size", f"{rc}: {amount} is not a multiple of step_size {inv.step_size}"))
    return reasons


def room(inv: Inventory, amount: int) -> list[Reason]:
    """Capacity is (total - reserved) * allocation_ratio; what is used plus the amount must fit."""
    rc = inv.resource_class
    if inv.reserved >= inv.total:
        text = f"{rc}: reserved {inv.reserved} == total {inv.total}: parked, nothing can be allocated"
        return [Reason("parked", text)]
    if inv.used + amount <= (inv.total - inv.reserved) * inv.allocation_ratio:
        return []
    return [
        Reason(
            "capacity",
            f"{rc}: {inv.used} of {inv.capacity} used, {amount} asked "
            f"(total {inv.total}, reserved {inv.reserved}, ratio {inv.allocation_ratio})",
        )
    ]


def inventory_rules(facts: Facts, rc: str, amount: int) -> list[Reason]:
    """Every reason ``facts`` cannot give ``amount`` of ``rc`` by itself."""
    if missing := no_inventory(facts, rc):
        return missing
    inv = facts.inventories[rc]
    return unit_rules(inv, amount) + room(inv, amount)


# -- traits -------------------------------------------------------------------------
def required_traits(facts: Facts, group: RequestGroup) -> list[Reason]:
    """Each ``required`` trait (or ``in:`` set) must be on the provider itself."""
    reasons = []
    for any_of in group.required:
        if not any_of & facts.traits:
            if len(any_of) == 1:
                reasons.append(Reason("required_trait", f"{facts.name} lacks the required trait {listed(any_of)}"))
            else:
                reasons.append(Reason("any_of_traits", f"{facts.name} has none of the traits in:{listed(any_of)}"))
    return reasons


def forbidden_traits(facts: Facts, group: RequestGroup) -> list[Reason]:
    if present := group.forbidden & facts.traits:
        return [Reason("forbidden_trait", f"{facts.name} has the forbidden trait(s) {listed(present)}")]
    return []


# -- aggregates -----------------------------------------------------------------------
def member_of(facts: Facts, group: RequestGroup, names: dict[str, str], root_counts: bool) -> list[Reason]:
    """Each member_of list needs the provider in one of its aggregates. For a group
    spread over a tree, an aggregate on the root spans the whole tree (``root_counts``):
    the provider passes if it, or its root, is in one aggregate of every list."""
    if not group.member_of:
        return []
    if root_counts and all(any_of & facts.root_aggregates for any_of in group.member_of):
        return []
    also = f" (nor is its root {facts.root_name} in one of every member_of list)" if root_counts else ""
    return [
        Reason("member_of", f"member_of: {facts.name} is not in {_aggregates(any_of, names)}{also}")
        for any_of in group.member_of
        if not any_of & facts.aggregates
    ]


def forbidden_aggregates(facts: Facts, group: RequestGroup, names: dict[str, str], root_counts: bool) -> list[Reason]:
    reasons = []
    if bad := group.forbidden_aggregates & facts.aggregates:
        reasons.append(Reason("forbidden_aggregate", f"{facts.name} is in the forbidden {_aggregates(bad, names)}"))
    if root_counts and facts.root != facts.uuid and (bad := group.forbidden_aggregates & facts.root_aggregates):
        reasons.append(
            Reason("forbidden_aggregate", f"its root {facts.root_name} is in the forbidden {_aggregates(bad, names)}")
        )
    return reasons


def _aggregates(uuids, names: dict[str, str]) -> str:
    shown = [f"{names[u]} ({u})" if names.get(u, u) != u else u for u in sorted(uuids)]
    return ("aggregate " if len(shown) == 1 else "any of the aggregates ") + ", ".join(shown)


# -- trees ------------------------------------------------------------------------------
def in_tree(facts: Facts, group: RequestGroup, target_root: str | None, names: dict[str, str]) -> list[Reason]:
    """in_tree keeps the providers of one tree (sharing providers outside it too are left out)."""
    if not group.in_tree or not group.resources:  # Placement applies no in_tree to a resourceless group
        return []
    if target_root is None:
        return [Reason("in_tree", f"in_tree={group.in_tree} names no provider, so nothing matches")]
    if facts.root == target_root:
        return []
    where = names.get(group.in_tree, group.in_tree)
    return [
        Reason(
            "in_tree",
            f"{facts.name} is outside in_tree {where}: it is in the tree of {facts.root_name}, "
            f"{where} in the tree of {names.get(target_root, target_root)}",
        )
    ]


def root_required(root_name: str, root_traits: frozenset[str], request: CandidateRequest) -> list[Reason]:
    """root_required: the root of the tree a candidate comes from must have (or lack) these traits."""
    reasons = []
    if missing := request.root_required - root_traits:
        reasons.append(Reason("root_required", f"root_required: the root {root_name} lacks {listed(missing)}"))
    if present := request.root_forbidden & root_traits:
        text = f"root_required: the root {root_name} has the forbidden {listed(present)}"
        reasons.append(Reason("root_required", text))
    return reasons


def resourceless_unfiltered(group: RequestGroup) -> list[Reason]:
    """A resourceless group finds its providers by required traits or member_of; with neither it finds none."""
    if group.resources or group.required or group.member_of:
        return []
    return [Reason("resourceless", f"{group_label(group.suffix)} has no resources, no required trait and no "
                                   "member_of, so it matches no provider")]


def limit_cut(limit: int, unlimited: int, using: int, name: str) -> Reason:
    """limit keeps the first N candidates (here: searching the trees in UUID order)."""
    return Reason("limit", f"limit={limit}: without it there are {unlimited} candidate(s), {using} of them using "
                           f"{name}, but the first {limit} found do not use it")


# -- the request, in words -------------------------------------------------------------
def group_request(group: RequestGroup) -> str:
    """The group as it was asked, in Placement's syntax."""
    s, parts = group.suffix, []
    if group.resources:
        parts.append(f"resources{s}=" + ",".join(f"{rc}:{n}" for rc, n in group.resources.items()))
    for any_of in group.required:
        parts.append(f"required{s}=" + (next(iter(any_of)) if len(any_of) == 1 else "in:" + ",".join(sorted(any_of))))
    if group.forbidden:
        parts.append(f"required{s}=" + ",".join(f"!{t}" for t in sorted(group.forbidden)))
    for any_of in group.member_of:
        parts.append(f"member_of{s}=" + (next(iter(any_of)) if len(any_of) == 1 else "in:" + ",".join(sorted(any_of))))
    if group.forbidden_aggregates:
        parts.append(f"member_of{s}=!in:" + ",".join(sorted(group.forbidden_aggregates)))
    if group.in_tree:
        parts.append(f"in_tree{s}={group.in_tree}")
    return "&".join(parts)


def aggregates_named(group: RequestGroup) -> set[str]:
    return set().union(*group.member_of, group.forbidden_aggregates)
