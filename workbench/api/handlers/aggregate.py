"""``/resource_providers/{uuid}/aggregates`` (1.1+): read and replace a provider's aggregates.

From 1.19 both directions carry the provider's generation, and PUT needs
the current one (and bumps it); before 1.19 the body is a bare list and the
generation is neither checked nor changed. PUT echoes the aggregates in the
order they were sent, as Placement does.
"""

from __future__ import annotations

from placement.policies import aggregate as policies
from placement.schemas import aggregate as schema

from workbench.api import errors, microversion, util
from workbench.engine import providers

GENERATION_VERSION = (1, 19)


def _send(req: util.Request, aggregates: list[str], generation: int):
    body = {"aggregates": aggregates}
    if req.version.matches(GENERATION_VERSION):
        body["resource_provider_generation"] = generation
    return util.json_response(req, body)


@errors.wsgify
@microversion.version_handler("1.1")
@util.check_accept("application/json")
def get_aggregates(req: util.Request):
    req.context.can(policies.LIST)
    current = providers.get_aggregates(req.graph, req.path_item("uuid"))
    return _send(req, current["aggregates"], current["resource_provider_generation"])


@errors.wsgify
@microversion.version_handler("1.1")
@util.require_content("application/json")
def set_aggregates(req: util.Request):
    uuid = req.path_item("uuid")
    req.context.can(policies.UPDATE)
    # Placement looks the provider up (404) before it reads the body (400).
    providers.get_provider(req.graph, uuid)
    if req.version.matches(GENERATION_VERSION):
        data = util.extract_json(req.body, schema.PUT_AGGREGATES_SCHEMA_V1_19)
        aggregates, generation = data["aggregates"], data["resource_provider_generation"]
    else:
        aggregates, generation = util.extract_json(req.body, schema.PUT_AGGREGATES_SCHEMA_V1_1), None
    result = providers.set_aggregates(req.graph, uuid, aggregates, generation)
    return _send(req, aggregates, result["resource_provider_generation"])
