"""``/resource_providers/{uuid}/inventories[/{resource_class}]``: read, replace,
add, update and delete a provider's inventories.

Placement looks the provider up (404) before it validates the body (400), so
the writes do the same; the engine then repeats the lookup under the
provider's lock and checks the generation inside its one transaction.
Before 1.26 an inventory must keep some capacity (``reserved < total``);
DELETE of all inventories exists from 1.5 (405 before).
"""

from __future__ import annotations

from placement.policies import inventory as policies
from placement.schemas import inventory as schema

from workbench.api import errors, microversion, util
from workbench.engine import inventories, providers

def _reserved_can_be_total(req: util.Request) -> bool:
    return req.version.matches((1, 26))


def _single(body: dict) -> dict:
    """One inventory's body; Placement leaves the generation out when it is 0."""
    if not body.get("resource_provider_generation"):
        body = {k: v for k, v in body.items() if k != "resource_provider_generation"}
    return body


@errors.wsgify
@util.check_accept("application/json")
def get_inventories(req: util.Request):
    req.context.can(policies.LIST)
    return util.json_response(req, inventories.get_inventories(req.graph, req.path_item("uuid")))


@errors.wsgify
@util.check_accept("application/json")
def get_inventory(req: util.Request):
    req.context.can(policies.SHOW)
    body = inventories.get_inventory(req.graph, req.path_item("uuid"), req.path_item("resource_class"))
    return util.json_response(req, _single(body))


@errors.wsgify
@util.require_content("application/json")
def set_inventories(req: util.Request):
    uuid = req.path_item("uuid")
    req.context.can(policies.UPDATE)
    providers.get_provider(req.graph, uuid)
    data = util.extract_json(req.body, schema.PUT_INVENTORY_SCHEMA)
    body = inventories.set_inventories(
        req.graph,
        uuid,
        data["inventories"],
        data["resource_provider_generation"],
        reserved_can_be_total=_reserved_can_be_total(req),
    )
    return util.json_response(req, body)


@errors.wsgify
@util.require_content("application/json")
def create_inventory(req: util.Request):
    uuid = req.path_item("uuid")
    req.context.can(policies.CREATE)
    providers.get_provider(req.graph, uuid)
    data = util.extract_json(req.body, schema.POST_INVENTORY_SCHEMA)
    resource_class = data.pop("resource_class")
    body = inventories.add_inventory(
        req.graph, uuid, resource_class, data, reserved_can_be_total=_reserved_can_be_total(req)
    )
    req.response.location = req.url_for(f"/resource_providers/{uuid}/inventories/{resource_class}")
    return util.json_response(req, _single(body), status=201)


@errors.wsgify
@util.require_content("application/json")
def update_inventory(req: util.Request):
    uuid = req.path_item("uuid")
    req.context.can(policies.UPDATE)
    providers.get_provider(req.graph, uuid)
    data = util.extract_json(req.body, schema.BASE_INVENTORY_SCHEMA)
    generation = data.pop("resource_provider_generation")
    body = inventories.set_inventory(
        req.graph,
        uuid,
        req.path_item("resource_class"),
        data,
        generation,
        reserved_can_be_total=_reserved_can_be_total(req),
    )
    return util.json_response(req, _single(body))


@errors.wsgify
def delete_inventory(req: util.Request):
    req.context.can(policies.DELETE)
    inventories.delete_inventory(req.graph, req.path_item("uuid"), req.path_item("resource_class"))
    return util.no_content(req)


@errors.wsgify
@microversion.version_handler("1.5", status_code=405)
def delete_inventories(req: util.Request):
    req.context.can(policies.DELETE)
    inventories.delete_inventories(req.graph, req.path_item("uuid"))
    return util.no_content(req)
