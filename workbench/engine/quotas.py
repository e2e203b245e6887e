"""Quotas: limits per project (optionally per user, per consumer type), per resource class.

Placement only counts usage; quota is enforced elsewhere (Nova's unified
limits), with known gaps: several Novas sharing one Placement, and resizes
counted twice. In the graph, a limit is a node, usage is the sum of the
project's allocations, and the check runs **inside the claim's own
transaction**:

* the claim first takes the project's lock (``Project.claims``), so two claims
  of one project cannot both see the same headroom and overshoot together;
* usage is counted without the claiming consumers' current allocations, since
  those are being replaced: moving a consumer (a resize) needs room for the
  new allocations only, not for old and new together.

A limit applies to a consumer when its project matches and, where the limit
names them, its user and consumer type. A limit without a consumer type counts
every consumer type; one with ``consumer_type: INSTANCE`` ignores, for
example, the MIGRATION consumers Nova uses to hold a resize's source host.
"""

from __future__ import annotations

import collections
import dataclasses

import neo4j

from workbench.graphdb.db import Graph, Reader
from workbench.engine.errors import BadRequest, Conflict
from workbench.engine.providers import unknown_resource_classes
from workbench.scenario import CONSUMER_TYPE, MAX_INT, STRING_MAX

QUOTA_EXCEEDED = "workbench.quota.exceeded"

LOCK_PROJECTS = """
// One lock per project: every claim of the project waits here for the last one.
UNWIND $projects AS project_id
MERGE (p:Project {id: project_id})
SET p.claims = coalesce(p.claims, 0) + 1
"""

LIMITS = """
// The limits that apply to a project's consumers.
MATCH (q:Limit {project_id: $project})
RETURN q.user_id AS user, q.consumer_type AS consumer_type, q.resource_class AS resource_class, q.limit AS limit
ORDER BY resource_class, user, consumer_type
"""

PROJECT_USAGE = """
// What a project's consumers hold, per user, consumer type and class,
// leaving out the consumers whose allocations are being replaced.
MATCH (c:Consumer {project_id: $project})-[a:CONSUMES]->(inv:Inventory)
WHERE NOT c.uuid IN $replacing
RETURN c.user_id AS user, c.consumer_type AS consumer_type, inv.resource_class AS resource_class,
       sum(a.used) AS used
"""

SET_LIMITS = """
// Quota limits, one node per project / scope (user, consumer type) / class.
UNWIND $limits AS l
MERGE (q:Limit {project_id: l.project, scope: l.scope, resource_class: l.resource_class})
SET q.user_id = l.user, q.consumer_type = l.consumer_type, q.limit = l.limit
"""

ALL_LIMITS = """
MATCH (q:Limit) WHERE $project IS NULL OR q.project_id = $project
RETURN q.project_id AS project, q.user_id AS user, q.consumer_type AS consumer_type,
       q.resource_class AS resource_class, q.limit AS limit
ORDER BY project, user, consumer_type, resource_class
"""


class QuotaExceeded(Conflict):
    """A claim that would take a project or user past a limit."""


@dataclasses.dataclass(frozen=True)
class Limit:
    project: str
    user: str | None
    consumer_type: str | None
    resource_class: str
    limit: int

    def applies_to(self, user: str, consumer_type: str) -> bool:
        return self.user in (None, user) and self.consumer_type in (None, consumer_type)

    def scope(self) -> str:
        parts = [f"project {self.project}"]
        if self.user:
            parts.append(f"user {self.user}")
        if self.consumer_type:
            parts.append(f"consumer type {self.consumer_type}")
        return ", ".join(parts)


def set_limits(
    graph: Graph, project: str, limits: dict[str, int], user: str | None = None, consumer_type: str | None = None
) -> None:
    """Set (or replace) limits for one scope, in one transaction.

    Refused (BadRequest, nothing set) for an unknown resource class (a limit on
    it would never apply), a limit that is not a whole number from 0 to
    2147483647 (a scenario's bound), or a malformed project, user or type.
    """
    check_owner(project, user, consumer_type)
    for rc, limit in limits.items():
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_INT:
            raise BadRequest(f"the limit for {rc} must be a whole number from 0 to {MAX_INT}, got {limit!r}")

    def work(tx: neo4j.ManagedTransaction) -> None:
        if unknown := unknown_resource_classes(Reader(tx), list(limits)):
            raise BadRequest(
                f"unknown resource class {unknown[0]!r}: not a standard class (os-resource-classes, in capitals) "
                "and no such custom class exists"
            )
        tx.run(SET_LIMITS, limits=limit_rows(project, user, consumer_type, limits)).consume()

    graph.write(work)


def check_owner(project: str, user: str | None, consumer_type: str | None) -> None:
    """Placement's schema for who holds allocations (1.38): ids of 1 to 255
    characters, a type of [A-Z0-9_]+; None is "not given"."""
    for what, value in (("project", project), ("user", user), ("consumer type", consumer_type)):
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= STRING_MAX):
            raise BadRequest(f"the {what} must be 1 to {STRING_MAX} characters, got {value!r}")
    if consumer_type is not None and not CONSUMER_TYPE.match(consumer_type):
        raise BadRequest(f"consumer type {consumer_type!r} must match [A-Z0-9_]+ (e.g. INSTANCE, MIGRATION)")


def limit_rows(project: str, user: str | None, consumer_type: str | None, limits: dict[str, int]) -> list[dict]:
    """The SET_LIMITS parameter rows for one scope."""
    scope = scope_key(user, consumer_type)
    return [
        {"project": project, "user": user, "consumer_type": consumer_type, "resource_class": rc, "limit": limit,
         "scope": scope}
        for rc, limit in sorted(limits.items())
    ]


def _used(limit: Limit, usage_rows: list[dict]) -> int:
    """What the consumers a limit covers hold of its class."""
    return sum(
        r["used"]
        for r in usage_rows
        if r["resource_class"] == limit.resource_class and limit.applies_to(r["user"], r["consumer_type"])
    )


def scope_key(user: str | None, consumer_type: str | None) -> str:
    # MERGE needs a non-null key: the scope as one string.
    return f"user={user or '*'};type={consumer_type or '*'}"


def limits(graph: Graph, project: str | None = None) -> list[Limit]:
    return [
        Limit(r["project"], r["user"], r["consumer_type"], r["resource_class"], r["limit"])
        for r in graph.read(ALL_LIMITS, project=project)
    ]


def check_in_transaction(tx: neo4j.ManagedTransaction, consumers: dict[str, dict]) -> None:
    """Refuse the write if it takes any project or user past a limit.

    ``consumers`` is what :func:`workbench.engine.allocations.write_allocations`
    is about to write: consumer uuid -> allocations, project_id, user_id,
    consumer_type. Runs inside that write's transaction.
    """
    projects = sorted({body["project_id"] for body in consumers.values()})
    tx.run(LOCK_PROJECTS, projects=projects).consume()
    for project in projects:
        project_limits = [
            Limit(project, r["user"], r["consumer_type"], r["resource_class"], r["limit"])
            for r in tx.run(LIMITS, project=project).data()
        ]
        if not project_limits:
            continue
        held = tx.run(PROJECT_USAGE, project=project, replacing=sorted(consumers)).data()
        asked = [
            (body["user_id"], body.get("consumer_type") or "INSTANCE", rc, amount)
            for body in consumers.values()
            if body["project_id"] == project
            for resources in body["allocations"].values()
            for rc, amount in resources.items()
        ]
        for limit in project_limits:
            used = _used(limit, held)
            wanted = sum(
                amount
                for user, consumer_type, rc, amount in asked
                if rc == limit.resource_class and limit.applies_to(user, consumer_type)
            )
            if wanted and used + wanted > limit.limit:
                raise QuotaExceeded(
                    f"Quota exceeded for {limit.resource_class} ({limit.scope()}): limit {limit.limit}, "
                    f"in use {used}, asked for {wanted}; {max(limit.limit - used, 0)} left",
                    QUOTA_EXCEEDED,
                )


def check_loaded(tx: neo4j.ManagedTransaction, consumers: list, limit_rows_set: list[dict], source: str) -> None:
    """In a load's last transaction, its consumers already written: refuse the load if
    the graph's consumers now hold more than a limit the load set, or more than any
    limit on a class the load's consumers hold (what was there before counts too).

    ``consumers`` are the scenario's (project, user, consumer_type, allocations);
    ``limit_rows_set`` the SET_LIMITS rows the load wrote.
    """
    added: collections.Counter = collections.Counter()
    for c in consumers:
        for resources in c.allocations.values():
            for rc, amount in resources.items():
                added[c.project, c.user, c.consumer_type, rc] += amount
    set_here = {(r["project"], r["user"], r["consumer_type"], r["resource_class"]) for r in limit_rows_set}
    projects = sorted({key[0] for key in added} | {key[0] for key in set_here})
    if not projects:
        return
    tx.run(LOCK_PROJECTS, projects=projects).consume()
    for project in projects:
        held = tx.run(PROJECT_USAGE, project=project, replacing=[]).data()
        for r in tx.run(LIMITS, project=project).data():
            limit = Limit(project, r["user"], r["consumer_type"], r["resource_class"], r["limit"])
            mine = sum(
                n
                for (p, user, consumer_type, rc), n in added.items()
                if p == project and rc == limit.resource_class and limit.applies_to(user, consumer_type)
            )
            key = (project, limit.user, limit.consumer_type, limit.resource_class)
            used = _used(limit, held)
            if (mine or key in set_here) and used > limit.limit:
                raise QuotaExceeded(
                    f"{source}: quota exceeded for {limit.resource_class} ({limit.scope()}): limit {limit.limit}, "
                    f"but its consumers would hold {used}, {mine} of it from this file",
                    QUOTA_EXCEEDED,
                )


def usage_report(graph: Graph, project: str | None = None) -> list[dict]:
    """Each limit with its current usage and headroom."""
    report = []
    usage_by_project: dict[str, list[dict]] = {}
    for limit in limits(graph, project):
        if limit.project not in usage_by_project:
            usage_by_project[limit.project] = graph.read(PROJECT_USAGE, project=limit.project, replacing=[])
        used = _used(limit, usage_by_project[limit.project])
        report.append(
            {
                "project": limit.project,
                "user": limit.user or "",
                "consumer_type": limit.consumer_type or "",
                "resource_class": limit.resource_class,
                "limit": limit.limit,
                "used": used,
                "headroom": limit.limit - used,
            }
        )
    return report


def headroom(graph: Graph, project: str, user: str | None, consumer_type: str = "INSTANCE") -> dict[str, int]:
    """How much more of each limited class may be claimed (the tightest applicable limit).

    Without a user, only the project-wide limits count."""
    room: dict[str, int] = collections.defaultdict(lambda: 2**63)
    held = graph.read(PROJECT_USAGE, project=project, replacing=[])
    for limit in limits(graph, project):
        if not limit.applies_to(user, consumer_type):
            continue
        room[limit.resource_class] = min(room[limit.resource_class], limit.limit - _used(limit, held))
    return dict(room)


def affordable(
    graph: Graph, body: dict, project: str, user: str | None = None, consumer_type: str = "INSTANCE"
) -> tuple[dict, dict[str, int]]:
    """Drop the candidates the caller's quota cannot afford.

    Returns the trimmed body (summaries kept for the remaining candidates'
    trees only) and, per reason, how many candidates were dropped.
    """
    room = headroom(graph, project, user, consumer_type)
    kept, dropped = [], collections.Counter()
    for request in body["allocation_requests"]:
        totals = collections.Counter()
        for resources in request["allocations"].values():
            totals.update(resources["resources"])
        over = sorted(rc for rc, n in totals.items() if rc in room and n > room[rc])
        if over:
            dropped[", ".join(f"{rc} needs more than the {room[rc]} left in quota" for rc in over)] += 1
        else:
            kept.append(request)
    roots = {body["provider_summaries"][rp]["root_provider_uuid"] for r in kept for rp in r["allocations"]}
    summaries = {rp: s for rp, s in body["provider_summaries"].items() if s["root_provider_uuid"] in roots}
    return {"allocation_requests": kept, "provider_summaries": summaries}, dict(dropped)
