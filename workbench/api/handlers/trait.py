"""``/traits``, ``/traits/{name}`` and ``/resource_providers/{uuid}/traits`` (from 1.6)."""

import jsonschema
from placement.policies import trait as policies
from placement.schemas import trait as schema

from workbench.api import errors, microversion, util
from workbench.engine import catalog, providers
from workbench.engine.errors import NotFound

INVALID_TRAIT = (
    "The trait is invalid. A valid trait must be no longer than 255 characters, "
    'start with the prefix "CUSTOM_" and use following characters: "A"-"Z", "0"-"9" and "_"'
)


def _name_filter(value: str) -> dict:
    """``?name=in:A,B`` or ``?name=startswith:CUSTOM_`` as engine filters
    (another operator filters nothing, as in Placement)."""
    operator, colon, operand = value.partition(":")
    if not colon:
        raise errors.http_error(
            400,
            "Badly formatted name parameter. Expected name query string parameter in form: "
            f'?name=[in|startswith]:[name1,name2|prefix]. Got: "{value}"',
        )
    if operator == "in":
        return {"name_in": operand.split(",")}
    if operator == "startswith":
        return {"prefix": operand}
    return {}


@errors.wsgify
@microversion.version_handler("1.6")
@util.check_accept("application/json")
def list_traits(req):
    req.context.can(policies.TRAITS_LIST)
    util.validate_query_params(req, schema.LIST_TRAIT_SCHEMA)
    filters = _name_filter(req.GET["name"]) if "name" in req.GET else {}
    if "associated" in req.GET:
        associated = req.GET["associated"].lower()
        if associated not in ("true", "false"):
            raise errors.http_error(400, 'The query parameter "associated" only accepts "true" or "false"')
        filters["associated"] = associated == "true"
    return util.json_response(req, {"traits": catalog.list_traits(req.graph, **filters)})


@errors.wsgify
@microversion.version_handler("1.6")
def get_trait(req):
    req.context.can(policies.TRAITS_SHOW)
    catalog.get_trait(req.graph, req.path_item("name"))
    response = util.no_content(req)
    util.cache_headers(req)
    return response


@errors.wsgify
@microversion.version_handler("1.6")
def put_trait(req):
    req.context.can(policies.TRAITS_UPDATE)
    name = req.path_item("name")
    try:
        jsonschema.validate(name, schema.CUSTOM_TRAIT)
    except jsonschema.ValidationError:
        raise errors.http_error(400, INVALID_TRAIT) from None
    created = catalog.create_trait(req.graph, name)
    response = util.no_content(req, 201 if created else 204, location=req.url_for(f"/traits/{name}"))
    util.cache_headers(req)
    return response


@errors.wsgify
@microversion.version_handler("1.6")
def delete_trait(req):
    req.context.can(policies.TRAITS_DELETE)
    catalog.delete_trait(req.graph, req.path_item("name"))
    return util.no_content(req)


@errors.wsgify
@microversion.version_handler("1.6")
@util.check_accept("application/json")
def list_traits_for_resource_provider(req):
    req.context.can(policies.RP_TRAIT_LIST)
    uuid = req.path_item("uuid")
    try:
        body = providers.get_traits(req.graph, uuid)
    except NotFound as error:
        raise NotFound(f"No resource provider with uuid {uuid} found: {error.detail}") from None
    return util.json_response(req, body)


@errors.wsgify
@microversion.version_handler("1.6")
@util.require_content("application/json")
def update_traits_for_resource_provider(req):
    req.context.can(policies.RP_TRAIT_UPDATE)
    data = util.extract_json(req.body, schema.SET_TRAITS_FOR_RP_SCHEMA)
    body = providers.set_traits(req.graph, req.path_item("uuid"), data["traits"], data["resource_provider_generation"])
    return util.json_response(req, body)


@errors.wsgify
@microversion.version_handler("1.6")
def delete_traits_for_resource_provider(req):
    req.context.can(policies.RP_TRAIT_DELETE)
    uuid = req.path_item("uuid")
    # Placement too reads the provider, then writes at that generation: a
    # concurrent change in between is a 409, not a silent overwrite.
    generation = providers.get_traits(req.graph, uuid)["resource_provider_generation"]
    providers.set_traits(req.graph, uuid, [], generation)
    return util.no_content(req)
