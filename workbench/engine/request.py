"""Placement's ``GET /allocation_candidates`` query string, parsed as Placement 1.39 does
(or as it does at an earlier microversion, for the REST API).

The syntax is Placement's, verbatim (placement/lib.py, placement/util.py and
the 1.36 query schema): an unsuffixed group (``resources``, ``required``,
``member_of``, ``in_tree``), any number of suffixed groups (``resources1``,
``resources_NET``, ...), and the request-wide ``group_policy``, ``limit``,
``root_required`` and ``same_subtree``. Errors carry Placement's detail text
and error code, so both engines can be compared on bad requests too.

At an earlier microversion (``parse(query, version=(1, 25))``) the syntax
added since is refused with Placement's messages for it: forbidden traits
need 1.22, several ``member_of`` 1.24, forbidden aggregates 1.32, string
suffixes 1.33, ``in:`` traits 1.39 (before it only the last ``required``
counts), and before 1.36 every group needs resources. Which keys exist at a
version (``limit`` 1.16, granular groups 1.25, ...) is the query schema's
business: the REST layer checks it first with Placement's own schemas.
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
NUMBERED_GROUP_KEY = re.compile(r"^(resources|required|member_of|in_tree)([1-9][0-9]*)?$")  # before 1.33
LATEST = (1, 39)
REQUEST_WIDE = {"limit", "group_policy", "root_required", "same_subtree"}
LIMIT = re.compile(r"^[1-9][0-9]*$")
# Numbers beyond these mean the same as these, and stay within Neo4j's 64-bit integers:
# no limit is smaller than any answer, and no amount over an inventory's largest
# max_unit (2147483647) fits anywhere.
LARGEST_LIMIT = 2**63 - 1
LARGEST_AMOUNT = 2147483647 + 1
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
    # Before 1.29 clients cannot see trees: Placement drops every candidate that
    # takes from two providers of one tree, and summarises only the providers used.
    nested_aware: bool = True

    @property
    def granular_suffixes(self) -> list[str]:
        return [s for s in self.groups if s]

    def resource_classes(self) -> set[str]:
        return {rc for g in self.groups.values() for rc in g.resources}

    def trait_names(self) -> set[str]:
        return set().union(self.root_required, self.root_forbidden, *(g.trait_names for g in self.groups.values()))


def parse(query: str, version: tuple[int, int] = LATEST) -> CandidateRequest:
    """Parse and validate a query string; raise BadRequest as Placement would at ``version``."""
    pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
    _check_schema(pairs)
    request = CandidateRequest(groups={}, query=query, nested_aware=version >= (1, 29))
    _parse_request_wide(request, pairs)
    _parse_groups(request, pairs, version)
    _check_groups(request, version)
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
    # Placement's schema sees only the last limit, and its handler then reads the
    # first (a 500 when that one is not a number): every one is checked here.
    for limit in (v for k, v in pairs if k == "limit"):
        if not LIMIT.match(limit):
            raise BadRequest(f"Invalid query string parameters: {limit!r} does not match '^[1-9][0-9]*$'")
    if "group_policy" in last and last["group_policy"] not in GROUP_POLICIES:
        raise BadRequest(
            f"Invalid query string parameters: {last['group_policy']!r} is not one of ['none', 'isolate']"
        )


# -- request-wide parameters (RequestWideParams.from_request) -------------------
def _values(pairs, key) -> list[str]:
    return [v for k, v in pairs if k == key]


def _parse_request_wide(request: CandidateRequest, pairs) -> None:
    if limits := _values(pairs, "limit"):
        request.limit = min(int(limits[0]), LARGEST_LIMIT)
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
def _parse_groups(request: CandidateRequest, pairs, version: tuple[int, int] = LATEST) -> None:
    groups = request.groups
    key_pattern = GROUP_KEY if version >= (1, 33) else NUMBERED_GROUP_KEY
    allow_forbidden, allow_any = version >= (1, 22), version >= (1, 39)
    for key, value in pairs:
        match = key_pattern.match(key)
        if not match:
            continue
        prefix, suffix = match.group(1), match.group(2) or ""
        group = groups.setdefault(suffix, RequestGroup(suffix))
        if prefix == "resources":
            group.resources = _parse_resources(value)
        elif prefix == "required":
            group.required, group.forbidden = [], set()
            # Before 1.39 a repeated `required` is not an AND: the last one counts.
            for each in _values(pairs, key) if allow_any else _values(pairs, key)[-1:]:
                required, forbidden = _parse_traits(each, allow_any, allow_forbidden)
                group.required.extend(required)
                group.forbidden |= forbidden
        elif prefix == "member_of":
            group.member_of, group.forbidden_aggregates = [], set()
            values = _values(pairs, key)
            if len(values) > 1 and version < (1, 24):
                raise BadRequest(f"Multiple member_of{suffix} parameters are not supported")
            for each in values:
                required, forbidden = _parse_member_of(each)
                if required:
                    group.member_of.append(frozenset(required))
                if forbidden and version < (1, 32):
                    raise BadRequest(
                        f"Forbidden member_of{suffix} parameters are not supported in the specified microversion"
                    )
                group.forbidden_aggregates |= forbidden
        else:
            group.in_tree = value.strip()
            if not _is_uuid_like(group.in_tree):
                raise BadRequest(
                    "Invalid query string parameters: Expected 'in_tree' parameter to be a format of uuid. "
                    f"Got: {value}"
                )


def _check_groups(request: CandidateRequest, version: tuple[int, int] = LATEST) -> None:
    groups = request.groups
    if version < (1, 36):
        _check_all_have_resources(groups)
    else:
        _check_resourceless(request)
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


def _check_all_have_resources(groups: dict[str, RequestGroup]) -> None:
    """Before 1.36 (no resourceless groups): traits and aggregates need resources."""
    if orphans := [f"required{s}" for s, g in groups.items() if g.required and not g.resources]:
        raise BadRequest(
            "All traits parameters must be associated with resources.  "
            "Found the following orphaned traits keys: " + ", ".join(orphans)
        )
    if orphans := [
        f"member_of{s}" for s, g in groups.items() if not g.resources and (g.member_of or g.forbidden_aggregates)
    ]:
        raise BadRequest(
            "All member_of parameters must be associated with resources. "
            "Found the following orphaned member_of keys: " + ", ".join(orphans)
        )
    if not all(g.resources for g in groups.values()):
        raise BadRequest("All request groups must specify resources.")
    if not groups:
        raise BadRequest("At least one request group (`resources` or `resources{$S}`) is required.")


def _check_resourceless(request: CandidateRequest) -> None:
    """From 1.36: a group without resources must be named in same_subtree."""
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
        result[name] = min(amount, LARGEST_AMOUNT)
    return result


def _parse_traits(value: str, allow_any: bool, allow_forbidden: bool = True) -> tuple[list[frozenset[str]], set[str]]:
    """``T1,!T2`` (all of / none of; ``!`` from 1.22) or ``in:T1,T2`` (any of, from 1.39)."""
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
        form = "HW_CPU_X86_VMX,!CUSTOM_MAGIC" if allow_forbidden else "HW_CPU_X86_VMX,CUSTOM_MAGIC"
        raise BadRequest(
            "Invalid query string parameters: Expected 'required' parameter value of the form: "
            f"{form}. Got an empty trait in: {value}"
        )
    if forbidden and not allow_forbidden:
        raise BadRequest(
            "Invalid query string parameters: Expected 'required' parameter value of the form: "
            f"HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
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
