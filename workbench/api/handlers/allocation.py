"""Allocations: ``/allocations/{consumer_uuid}`` (GET, PUT, DELETE), ``POST
/allocations`` (1.13) and ``GET /resource_providers/{uuid}/allocations``.

The body shapes follow the microversion as in Placement: PUT takes a list of
``{resource_provider: {uuid}, resources}`` up to 1.11 (project and user
required from 1.8), then a dict by provider (1.12), ``consumer_generation``
(1.28, checked), ``mappings`` (1.34, accepted and not stored, as in
Placement) and ``consumer_type`` (1.38). GET answers grow the same way.
Before 1.8 a consumer gets the configured "incomplete consumer" project and
user; before 1.38 it keeps its type (a new one has none: ``unknown``).
The rules and their order live in :mod:`workbench.engine.allocations`.
"""

from __future__ import annotations

from placement.policies import allocation as policies
from placement.schemas import allocation as schema

from workbench.api import errors, microversion, util
from workbench.engine import allocations
from workbench.engine.consumers import UNCHECKED
from workbench.ids import normalise_uuid

PROJECT_USER_VERSION = (1, 12)  # GET shows project and user; PUT takes a dict by provider
CONSUMER_GENERATION_VERSION = (1, 28)
CONSUMER_TYPE_VERSION = (1, 38)

# PUT /allocations/{consumer_uuid}: the schema for each range of versions.
PUT_SCHEMAS = (
    ((1, 38), schema.ALLOCATION_SCHEMA_V1_38),
    ((1, 34), schema.ALLOCATION_SCHEMA_V1_34),
    ((1, 28), schema.ALLOCATION_SCHEMA_V1_28),
    ((1, 12), schema.ALLOCATION_SCHEMA_V1_12),
    ((1, 8), schema.ALLOCATION_SCHEMA_V1_8),
    ((1, 0), schema.ALLOCATION_SCHEMA),
)
POST_SCHEMAS = (
    ((1, 38), schema.POST_ALLOCATIONS_V1_38),
    ((1, 34), schema.POST_ALLOCATIONS_V1_34),
    ((1, 28), schema.POST_ALLOCATIONS_V1_28),
    ((1, 13), schema.POST_ALLOCATIONS_V1_13),
)


def schema_for(req, schemas) -> dict:
    return next(chosen for version, chosen in schemas if req.version.matches(version))


def consumer_write(req, data: dict) -> dict:
    """One consumer's part of a request body as the engine takes it.

    ``data["allocations"]`` must already be a dict by provider."""
    project, user = data.get("project_id"), data.get("user_id")
    if project is None:  # before 1.8: Placement's "incomplete consumer"
        project = req.context.config.placement.incomplete_consumer_project_id
        user = req.context.config.placement.incomplete_consumer_user_id
    return {
        "allocations": {rp: dict(entry["resources"]) for rp, entry in data["allocations"].items()},
        "project_id": project,
        "user_id": user,
        "consumer_generation": (
            data.get("consumer_generation") if req.version.matches(CONSUMER_GENERATION_VERSION) else UNCHECKED
        ),
        "consumer_type": data.get("consumer_type") if req.version.matches(CONSUMER_TYPE_VERSION) else None,
    }


@errors.wsgify
@util.check_accept("application/json")
def list_for_consumer(req):
    req.context.can(policies.ALLOC_LIST)
    body = allocations.get_allocations(req.graph, req.path_item("consumer_uuid"))
    shown = ["allocations"]
    if body["allocations"] and req.version.matches(PROJECT_USER_VERSION):
        shown += ["project_id", "user_id"]
        if req.version.matches(CONSUMER_GENERATION_VERSION):
            shown.append("consumer_generation")
        if req.version.matches(CONSUMER_TYPE_VERSION):
            shown.append("consumer_type")
    return util.json_response(req, {key: body[key] for key in shown})


@errors.wsgify
@util.check_accept("application/json")
def list_for_resource_provider(req):
    req.context.can(policies.RP_ALLOC_LIST)
    body = allocations.provider_allocations(req.graph, req.path_item("uuid"))
    if not req.version.matches(CONSUMER_GENERATION_VERSION):
        for held in body["allocations"].values():
            del held["consumer_generation"]
    return util.json_response(req, body)


@errors.wsgify
@util.require_content("application/json")
def set_allocations_for_consumer(req):
    req.context.can(policies.ALLOC_UPDATE)
    consumer = req.path_item("consumer_uuid")
    if normalise_uuid(consumer) is None:
        raise errors.http_error(400, f"Malformed consumer_uuid: {consumer}")
    data = util.extract_json(req.body, schema_for(req, PUT_SCHEMAS))
    if not req.version.matches(PROJECT_USER_VERSION):
        # The list form: the last entry for a provider wins, as in Placement.
        data["allocations"] = {
            entry["resource_provider"]["uuid"]: {"resources": entry["resources"]} for entry in data["allocations"]
        }
    allocations.write_allocations(req.graph, {consumer: consumer_write(req, data)}, wording="put")
    return util.no_content(req)


@errors.wsgify
@microversion.version_handler("1.13")
@util.require_content("application/json")
def set_allocations(req):
    req.context.can(policies.ALLOC_MANAGE)
    data = util.extract_json(req.body, schema_for(req, POST_SCHEMAS))
    allocations.write_allocations(
        req.graph, {consumer: consumer_write(req, part) for consumer, part in data.items()}, wording="post"
    )
    return util.no_content(req)


@errors.wsgify
def delete_allocations(req):
    req.context.can(policies.ALLOC_DELETE)
    allocations.delete_allocations(req.graph, req.path_item("consumer_uuid"))
    return util.no_content(req)
