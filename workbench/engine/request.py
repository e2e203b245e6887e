"""Placement's ``GET /allocation_candidates`` query string, parsed as Placement 1.39 does.

The syntax is Placement's, verbatim (placement/lib.py, placement/util.py and
the 1.36 query schema): an unsuffixed group (``resources``, ``required``,
``member_of``, ``in_tree``), any number of suffixed groups (``resources1``,
``resources_NET``, ...), and the request-wide ``group_policy``, ``limit``,
``root_required`` and ``same_subtree``. Errors carry Placement's detail text
and error code, so both engines can be compared on bad requests too.
"""

from __future__ import annotations

import dataclasses
import re
import uuid as uuidlib
from urllib.parse import parse_qsl, urlencode

from workbench.engine.errors import (
    QUERY_BAD_VALUE,
    QUERY_DUPLICATE_KEY,
    QUERY_MISSING_VALUE,
    BadRequest,
)

GROUP_KEY = re.compile(r"^(resources|required|member_of|in_tree)([a-zA-Z0-9_-]{1,64})?$")
REQUEST_WIDE = {"limit", "group_policy", "root_required", "same_subtree"}
LIMIT = re.compile(r"^[1-9][0-9]*$")
GROUP_POLICIES = ("none", "isolate")


@dataclasses.dataclass
class RequestGroup:
    """One request group. The unsuffixed group (suffix "") may spread over a
    tree and sharing providers; a suffixed group must come from one provider."""

    suffix: str
    resources: dict[str, int] = dataclasses.field(default_factory=dict)
    required: list[frozenset[str]] = dataclasses.field(default_factory=list)  # AND of any-of sets
    forbidden: set[str] = dataclasses.field(default_factory=set)
    member_of: list[frozenset[str]] = dataclasses.field(default_factory=list)  # AND of any-of sets
    forbidden_aggregates: set[str] = dataclasses.field(default_factory=set)
    in_tree: str | None = None

    @property
    def use_same_provider(self) -> bool:
        return bool(self.suffix)

    @property
    def trait_names(self) -> set[str]:
        return set().union(*self.required, self.forbidden)


@dataclasses.dataclass
class CandidateRequest:
    groups: dict[str, RequestGroup]  # in the order they appear in the query
    limit: int | None = None
    group_policy: str | None = None
    root_required: set[str] = dataclasses.field(default_factory=set)
    root_forbidden: set[str] = dataclasses.field(default_factory=set)
    same_subtrees: list[set[str]] = dataclasses.field(default_factory=list)
    query: str = ""

    @property
    def granular_suffixes(self) -> list[str]:
        return [s for s in self.groups if s]

    def resource_classes(self) -> set[str]:
        return {rc for g in self.groups.values() for rc in g.resources}

    def trait_names(self) -> set[str]:
        return set().union(self.root_required, self.root_forbidden, *(g.trait_names for g in self.groups.values()))


def parse(query: str) -> CandidateRequest:
    """Parse and validate a query string; raise BadRequest as Placement would."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    _check_schema(pairs)
    request = CandidateRequest(groups={}, query=query)
    _parse_request_wide(request, pairs)
    _parse_groups(request, pairs)
    _check_groups(request)
    return request


def build_query(params: list[tuple[str, str]]) -> str:
    """Assemble a query string from (key, value) pairs, keeping Placement's
    punctuation (``:``, ``,`` and ``!``) readable."""
    return urlencode(params, safe=":,!")


# -- the JSON-schema layer (placement/schemas/allocation_candidate.py) ----------
def _check_schema(pairs: list[tuple[str, str]]) -> None:
    last = dict(pairs)  # jsonschema sees a plain dict: the last value of a repeated key
    unexpected = sorted(k for k in last if k not in REQUEST_WIDE and not GROUP_KEY.match(k))
    if unexpected:
        listed = ", ".join(repr(k) for k in unexpected)
        verb = "were" if len(unexpected) > 1 else "was"
        raise BadRequest(
            "Invalid query string parameters: Additional properties are not allowed "
            f"({listed} {verb} unexpected)"
        )
    if "limit" in last and not LIMIT.match(last["limit"]):
        raise BadRequest(f"Invalid query string parameters: {last['limit']!r} does not match '^[1-9][0-9]*$'")
    if "group_policy" in last and last["group_policy"] not in GROUP_POLICIES:
        raise BadRequest(
            f"Invalid query string parameters: {last['group_policy']!r} is not one of ['none', 'isolate']"
        )


# -- request-wide parameters (RequestWideParams.from_request) -------------------
def _values(pairs, key) -> list[str]:
    return [v for k, v in pairs if k == key]


def _parse_request_wide(request: CandidateRequest, pairs) -> None:
    if limits := _values(pairs, "limit"):
        request.limit = int(limits[0])
    if policies := _values(pairs, "group_policy"):
        request.group_policy = policies[0]
    root_required = _values(pairs, "root_required")
    if len(root_required) > 1:
        raise BadRequest("Query parameter 'root_required' may be specified only once.", QUERY_DUPLICATE_KEY)
    if root_required:
        # root_required has no any-of form: each entry is a single trait.
        required, forbidden = _parse_traits(root_required[0], allow_any=False)
        request.root_required = {next(iter(s)) for s in required}
        request.root_forbidden = forbidden
        if conflicts := request.root_required & forbidden:
            raise BadRequest(
                "Conflicting required and forbidden traits found in root_required: " + ", ".join(conflicts),
                QUERY_BAD_VALUE,
            )
    for value in _values(pairs, "same_subtree"):
        suffixes = {s.strip() for s in value.split(",")}
        if "" in suffixes:
            raise BadRequest("Empty string (unsuffixed group) can not be specified in `same_subtree` ", QUERY_BAD_VALUE)
        request.same_subtrees.append(suffixes)


# -- request groups (RequestGroup.dict_from_request) ----------------------------
def _parse_groups(request: CandidateRequest, pairs) -> None:
    groups = request.groups
    for key, value in pairs:
        match = GROUP_KEY.match(key)
        if not match:
            continue
        prefix, suffix = match.group(1), match.group(2) or ""
        group = groups.setdefault(suffix, RequestGroup(suffix))
        if prefix == "resources":
            group.resources = _parse_resources(value)
        elif prefix == "required":
            group.required, group.forbidden = [], set()
            for each in _values(pairs, key):
                required, forbidden = _parse_traits(each, allow_any=True)
                group.required.extend(required)
                group.forbidden |= forbidden
        elif prefix == "member_of":
            group.member_of, group.forbidden_aggregates = [], set()
            for each in _values(pairs, key):
                required, forbidden = _parse_member_of(each)
                if required:
                    group.member_of.append(frozenset(required))
                group.forbidden_aggregates |= forbidden
        else:
            group.in_tree = value.strip()
            if not _is_uuid_like(group.in_tree):
                raise BadRequest(
                    "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. "
                    f"Got: {value}"
                )


def _check_groups(request: CandidateRequest) -> None:
    groups = request.groups
    resourceless = {s for s, g in groups.items() if not g.resources}
    in_subtrees = set().union(*request.same_subtrees)
    if len(resourceless) == len(groups):
        raise BadRequest("There must be at least one resources or resources[$S] parameter.", QUERY_MISSING_VALUE)
    if bad := [s for s in groups if s in resourceless and s not in in_subtrees]:
        raise BadRequest(
            "Resourceless suffixed group request should be specified in `same_subtree` query param: "
            f"bad group(s) - {bad}.",
            QUERY_BAD_VALUE,
        )
    if bad := sorted(in_subtrees - set(groups)):
        raise BadRequest(
            f"Real suffixes should be specified in `same_subtree`: {bad} not found in {list(groups)}.",
            QUERY_BAD_VALUE,
        )
    conflicts = [
        f"required{s}: ({', '.join(sorted(any_of))})"
        for s, g in groups.items()
        for any_of in g.required
        if any_of <= g.forbidden
    ]
    if conflicts:
        raise BadRequest(
            "Conflicting required and forbidden traits found in the following traits keys: "
            + ", ".join(sorted(conflicts))
        )
    if not request.group_policy and len(request.granular_suffixes) > 1:
        raise BadRequest(
            'The "group_policy" parameter is required when specifying more than one "resources{N}" parameter.'
        )


# -- values -----------------------------------------------------------------
BAD_RESOURCES = (
    "Badly formed resources parameter. Expected resources query string parameter in form: "
    "?resources=VCPU:2,MEMORY_MB:1024. Got: {}."
)


def _parse_resources(value: str) -> dict[str, int]:
    if value.strip() == "":
        raise BadRequest(BAD_RESOURCES.format("empty string"))
    result = {}
    for item in value.split(","):
        try:
            name, amount = item.split(":")
        except ValueError:
            raise BadRequest(BAD_RESOURCES.format(item)) from None
        try:
            amount = int(amount)
        except ValueError:
            raise BadRequest(f"Requested resource {name} expected positive integer amount. Got: {amount}.") from None
        if amount < 1:
            raise BadRequest(f"Requested resource {name} requires amount >= 1. Got: {amount}.")
        result[name] = amount
    return result


def _parse_traits(value: str, allow_any: bool) -> tuple[list[frozenset[str]], set[str]]:
    """``T1,!T2`` (all of / none of) or ``in:T1,T2`` (any of)."""
    if value.startswith("in:"):
        if not allow_any:
            raise BadRequest(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' only supported "
                f"since microversion 1.39. Got: {value}"
            )
        any_of = {t.strip() for t in value[3:].split(",")}
        if not all(any_of):
            raise BadRequest(
                "Invalid query string parameters: Expected 'required' parameter value of the form: "
                f"in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {value}"
            )
        if any(t.startswith("!") for t in any_of):
            raise BadRequest(
                "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' does not "
                f"support forbidden traits. Got: {value}"
            )
        return [frozenset(any_of)], set()
    names = [t.strip() for t in value.split(",")]
    # Placement strips any number of leading '!' (a documented quirk it kept).
    forbidden = {t.lstrip("!") for t in names if t.startswith("!")}
    if not all(names) or not all(forbidden):
        raise BadRequest(
            "Invalid query string parameters: Expected 'required' parameter value of the form: "
            f"HW_CPU_X86_VMX,!CUSTOM_MAGIC. Got an empty trait in: {value}"
        )
    return [frozenset([t]) for t in names if not t.startswith("!")], forbidden


def _parse_member_of(value: str) -> tuple[set[str], set[str]]:
    """``A``, ``in:A,B`` (any of), ``!A`` or ``!in:A,B`` (none of)."""
    if "," in value and not value.startswith(("in:", "!in:")):
        raise BadRequest(
            "Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' keyword "
            f"using the valid microversion. Got: {value}"
        )
    required: set[str] = set()
    forbidden: set[str] = set()
    if value.startswith("!in:"):
        forbidden = set(value[4:].split(","))
    elif value.startswith("!"):
        forbidden = {value[1:]}
    elif value.startswith("in:"):
        required = set(value[3:].split(","))
    else:
        required = {value}
    for aggregate in sorted(required | forbidden):
        if not _is_uuid_like(aggregate):
            raise BadRequest(
                "Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). "
                f"Got: {aggregate}"
            )
    return required, forbidden


def _is_uuid_like(value: str) -> bool:
    """oslo.utils' is_uuid_like: a UUID, with or without dashes, any case."""
    try:
        return str(uuidlib.UUID(value)).replace("-", "") == value.lower().replace("-", "").strip("{}").removeprefix("urn:uuid:")
    except (TypeError, ValueError, AttributeError):
        return False
