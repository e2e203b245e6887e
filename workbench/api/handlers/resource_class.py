"""``/resource_classes`` and ``/resource_classes/{name}`` (from 1.2)."""

import json

from placement.policies import resource_class as policies
from placement.schemas import resource_class as schema

from workbench.api import errors, microversion, util
from workbench.engine import catalog


def _represent(req, name: str) -> dict:
    return {"name": name, "links": [{"rel": "self", "href": _url(req, name)}]}


def _url(req, name: str) -> str:
    return req.url_for(f"/resource_classes/{name}")


@errors.wsgify
@microversion.version_handler("1.2")
@util.check_accept("application/json")
def list_resource_classes(req):
    req.context.can(policies.LIST)
    names = catalog.list_resource_classes(req.graph)
    return util.json_response(req, {"resource_classes": [_represent(req, name) for name in names]})


@errors.wsgify
@microversion.version_handler("1.2")
@util.require_content("application/json")
def create_resource_class(req):
    req.context.can(policies.CREATE)
    name = util.extract_json(req.body, schema.POST_RC_SCHEMA_V1_2)["name"]
    catalog.create_resource_class(req.graph, name)
    return util.no_content(req, 201, location=_url(req, name))


@errors.wsgify
@microversion.version_handler("1.2")
@util.check_accept("application/json")
def get_resource_class(req):
    req.context.can(policies.SHOW)
    name = catalog.get_resource_class(req.graph, req.path_item("name"))
    return util.json_response(req, _represent(req, name))


@util.require_content("application/json")
def _rename(req):
    """Before 1.7: PUT with a body renames a custom class."""
    req.context.can(policies.UPDATE)
    new_name = util.extract_json(req.body, schema.PUT_RC_SCHEMA_V1_2)["name"]
    catalog.rename_resource_class(req.graph, req.path_item("name"), new_name)
    return util.json_response(req, _represent(req, new_name), cached=False)


def _ensure(req):
    """From 1.7: PUT without a body creates the custom class (201) or confirms it (204)."""
    name = req.path_item("name")
    req.context.can(policies.UPDATE)
    # The name is checked as a body would be, for Placement's message.
    util.extract_json(json.dumps({"name": name}), schema.PUT_RC_SCHEMA_V1_2)
    created = catalog.create_resource_class(req.graph, name, exist_ok=True)
    return util.no_content(req, 201 if created else 204, location=_url(req, name))


update_resource_class = errors.wsgify(microversion.by_version(("1.2", "1.6", _rename), ("1.7", None, _ensure)))


@errors.wsgify
@microversion.version_handler("1.2")
def delete_resource_class(req):
    req.context.can(policies.DELETE)
    catalog.delete_resource_class(req.graph, req.path_item("name"))
    return util.no_content(req)
