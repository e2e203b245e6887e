"""Usage: ``/resource_providers/{uuid}/usages`` and ``/usages`` (1.9+).

``GET /usages`` needs ``project_id`` (and may narrow to ``user_id``); from
1.38 the answer is grouped by consumer type and may be filtered with
``consumer_type`` (a type, ``all`` or ``unknown``), see
:mod:`workbench.engine.usages`.
"""

from __future__ import annotations

from placement.policies import usage as policies
from placement.schemas import usage as schema

from workbench.api import errors, microversion, util
from workbench.engine import usages

CONSUMER_TYPE_VERSION = (1, 38)


@errors.wsgify
@util.check_accept("application/json")
def list_usages(req: util.Request):
    req.context.can(policies.PROVIDER_USAGES)
    return util.json_response(req, usages.provider_usages(req.graph, req.path_item("uuid")))


@errors.wsgify
@microversion.version_handler("1.9")
@util.check_accept("application/json")
def get_total_usages(req: util.Request):
    project_id, user_id = req.GET.get("project_id"), req.GET.get("user_id")
    # The target names the project asked about, so a project reader may see only its own.
    req.context.can(policies.TOTAL_USAGES, target={"project_id": project_id})
    if req.version.matches(CONSUMER_TYPE_VERSION):
        util.validate_query_params(req, schema.GET_USAGES_SCHEMA_V1_38)
        body = usages.usages_by_consumer_type(req.graph, project_id, user_id, req.GET.get("consumer_type"))
    else:
        util.validate_query_params(req, schema.GET_USAGES_SCHEMA_1_9)
        body = usages.total_usages(req.graph, project_id, user_id)
    return util.json_response(req, body)
