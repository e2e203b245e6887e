"""``/resource_providers`` and ``/resource_providers/{uuid}``: list (with
filters), create, show, update (rename, re-parent) and delete providers.

The response shape follows the microversion: ``links`` grow with the API
(aggregates 1.1, traits 1.6, allocations 1.11), parent and root UUIDs appear
at 1.14, POST returns the provider from 1.20 (an empty 201 before), and
re-parenting or un-parenting a child is allowed from 1.37. The query string
of the list is read as Placement reads it at the request's version.
"""

from __future__ import annotations

from placement.policies import resource_provider as policies
from placement.schemas import resource_provider as schema

from workbench.api import errors, util
from workbench.engine import providers
from workbench.engine.request import _parse_member_of, _parse_resources, _parse_traits

# The sub-resources a provider links to, and the version each appeared in.
LINKS = (
    ("inventories", (1, 0)),
    ("usages", (1, 0)),
    ("aggregates", (1, 1)),
    ("traits", (1, 6)),
    ("allocations", (1, 11)),
)

# The query schema of GET /resource_providers, newest first: the first the version matches.
LIST_SCHEMAS = (
    ((1, 18), schema.GET_RPS_SCHEMA_1_18),
    ((1, 14), schema.GET_RPS_SCHEMA_1_14),
    ((1, 4), schema.GET_RPS_SCHEMA_1_4),
    ((1, 3), schema.GET_RPS_SCHEMA_1_3),
    ((1, 0), schema.GET_RPS_SCHEMA_1_0),
)


def provider_url(req: util.Request, uuid: str) -> str:
    return req.url_for(f"/resource_providers/{uuid}")


def serialize(req: util.Request, provider: dict) -> dict:
    """One provider as Placement shows it at the request's version."""
    url = provider_url(req, provider["uuid"])
    links = [{"rel": "self", "href": url}]
    links += [{"rel": rel, "href": f"{url}/{rel}"} for rel, since in LINKS if req.version.matches(since)]
    body = {"uuid": provider["uuid"], "name": provider["name"], "generation": provider["generation"], "links": links}
    if req.version.matches((1, 14)):
        body["parent_provider_uuid"] = provider["parent_provider_uuid"]
        body["root_provider_uuid"] = provider["root_provider_uuid"]
    return body


@errors.wsgify
@util.check_accept("application/json")
def list_resource_providers(req: util.Request):
    req.context.can(policies.LIST)
    util.validate_query_params(req, next(s for since, s in LIST_SCHEMAS if req.version.matches(since)))
    found = providers.list_providers(req.graph, **_filters(req))
    return util.json_response(req, {"resource_providers": [serialize(req, p) for p in found]})


@errors.wsgify
@util.require_content("application/json")
def create_resource_provider(req: util.Request):
    req.context.can(policies.CREATE)
    body_schema = schema.POST_RP_SCHEMA_V1_14 if req.version.matches((1, 14)) else schema.POST_RESOURCE_PROVIDER_SCHEMA
    data = util.extract_json(req.body, body_schema)
    provider = providers.create_provider(
        req.graph, data["name"], uuid=data.get("uuid") or None, parent_uuid=data.get("parent_provider_uuid")
    )
    location = provider_url(req, provider["uuid"])
    if not req.version.matches((1, 20)):
        return util.no_content(req, status=201, location=location)
    req.response.location = location
    return util.json_response(req, serialize(req, provider))


@errors.wsgify
@util.check_accept("application/json")
def get_resource_provider(req: util.Request):
    req.context.can(policies.SHOW)
    provider = providers.get_provider(req.graph, req.path_item("uuid"))
    return util.json_response(req, serialize(req, provider))


@errors.wsgify
@util.require_content("application/json")
def update_resource_provider(req: util.Request):
    uuid = req.path_item("uuid")
    req.context.can(policies.UPDATE)
    # Placement looks the provider up (404) before it reads the body (400).
    providers.get_provider(req.graph, uuid)
    body_schema = schema.PUT_RP_SCHEMA_V1_14 if req.version.matches((1, 14)) else schema.PUT_RESOURCE_PROVIDER_SCHEMA
    data = util.extract_json(req.body, body_schema)
    provider = providers.update_provider(
        req.graph,
        uuid,
        data["name"],
        parent_uuid=data.get("parent_provider_uuid", providers.KEEP),
        allow_reparenting=req.version.matches((1, 37)),
    )
    return util.json_response(req, serialize(req, provider))


@errors.wsgify
def delete_resource_provider(req: util.Request):
    req.context.can(policies.DELETE)
    providers.delete_provider(req.graph, req.path_item("uuid"))
    return util.no_content(req)


# -- the list's query string -------------------------------------------------------------------


def _filters(req: util.Request) -> dict:
    """The list filters from the query string, parsed with the rules of the request's version
    (in Placement's order, which decides which of two bad parameters is reported)."""
    filters: dict = {}
    if "member_of" in req.GET:
        filters["member_of"], filters["forbidden_aggregates"] = _member_of(req)
    if "required" in req.GET:
        filters["required"], filters["forbidden_traits"] = _required(req)
    filters.update({key: req.GET[key] for key in ("name", "uuid", "in_tree") if key in req.GET})
    if "resources" in req.GET:
        filters["resources"] = _parse_resources(req.GET["resources"])
    return filters


def _member_of(req: util.Request) -> tuple[list[set[str]], set[str]]:
    """Repeatable from 1.24, ``!`` (forbidden) from 1.32."""
    values = req.GET.getall("member_of")
    if len(values) > 1 and not req.version.matches((1, 24)):
        raise errors.http_error(400, "Multiple member_of parameters are not supported")
    required, forbidden = [], set()
    for value in values:
        any_of, none_of = _parse_member_of(value)
        if any_of:
            required.append(any_of)
        if none_of and not req.version.matches((1, 32)):
            raise errors.http_error(
                400, "Forbidden member_of parameters are not supported in the specified microversion"
            )
        forbidden |= none_of
    return required, forbidden


def _required(req: util.Request) -> tuple[list[frozenset[str]], set[str]]:
    """``!`` (forbidden) from 1.22; ``in:`` and repeating the key from 1.39 (before, the last one counts)."""
    allow_forbidden, allow_any = req.version.matches((1, 22)), req.version.matches((1, 39))
    values = req.GET.getall("required")
    if not allow_any:
        values = values[-1:]
    required, forbidden = [], set()
    for value in values:
        all_of, none_of = _parse_traits(value, allow_any, allow_forbidden)
        required += all_of
        forbidden |= none_of
    return required, forbidden
