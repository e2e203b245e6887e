"""``GET /allocation_candidates`` (from 1.10): which providers could satisfy a request.

The search is the engine's (:mod:`workbench.engine.candidates`). This handler
checks the query string against Placement's schema for the request's
microversion, has the engine parse it at that version (syntax added later is
refused in Placement's words), and shapes the answer as that version's
clients expect it:

* allocation requests: before 1.12 a list of ``{"resource_provider": {"uuid"},
  "resources"}``; from 1.12 a dict keyed by provider UUID; ``mappings`` (request
  group suffix -> providers) from 1.34;
* provider summaries: before 1.27 only the requested resource classes;
  ``traits`` from 1.17; ``parent_provider_uuid`` and ``root_provider_uuid``
  from 1.29 (before 1.29 the engine also leaves out candidates that take from
  two providers of one tree, as Placement does for clients blind to trees).
"""

from placement.policies import allocation_candidate as policies
from placement.schemas import allocation_candidate as schema

from workbench.api import errors, microversion, util
from workbench.engine import candidates, request

# The versions at which the query schema changes, newest first.
SCHEMA_VERSIONS = ((1, 36), (1, 35), (1, 33), (1, 31), (1, 25), (1, 21), (1, 17), (1, 16))


def _query_schema(version) -> dict:
    for major, minor in SCHEMA_VERSIONS:
        if version.matches((major, minor)):
            return getattr(schema, f"GET_SCHEMA_{major}_{minor}")
    return schema.GET_SCHEMA_1_10


@errors.wsgify
@microversion.version_handler("1.10")
@util.check_accept("application/json")
def list_allocation_candidates(req):
    req.context.can(policies.LIST)
    util.validate_query_params(req, _query_schema(req.version))
    wanted = request.parse(req.query_string, (req.version.major, req.version.minor))
    body = candidates.find(req.graph, wanted)
    return util.json_response(req, _represent(body, wanted, req.version))


def _represent(body: dict, wanted: request.CandidateRequest, version) -> dict:
    """The engine's 1.39 body as ``version`` shows it."""
    if version.matches((1, 12)):
        keep_mappings = version.matches((1, 34))
        allocation_requests = [
            {"allocations": ar["allocations"], **({"mappings": ar["mappings"]} if keep_mappings else {})}
            for ar in body["allocation_requests"]
        ]
    else:
        allocation_requests = [
            {
                "allocations": [
                    {"resource_provider": {"uuid": rp}, "resources": allocation["resources"]}
                    for rp, allocation in ar["allocations"].items()
                ]
            }
            for ar in body["allocation_requests"]
        ]
    requested = wanted.resource_classes()
    summaries = {}
    for uuid, summary in body["provider_summaries"].items():
        shown = {"resources": summary["resources"]}
        if not version.matches((1, 27)):
            shown["resources"] = {rc: r for rc, r in summary["resources"].items() if rc in requested}
        if version.matches((1, 17)):
            shown["traits"] = summary["traits"]
        if version.matches((1, 29)):
            shown["parent_provider_uuid"] = summary["parent_provider_uuid"]
            shown["root_provider_uuid"] = summary["root_provider_uuid"]
        summaries[uuid] = shown
    return {"allocation_requests": allocation_requests, "provider_summaries": summaries}
