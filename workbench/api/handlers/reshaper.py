"""``POST /reshaper`` (1.30): inventories and allocations moved in one transaction.

The body is Placement's: ``inventories`` by provider (each a whole ``PUT
.../inventories`` body with its generation) and ``allocations`` by consumer
(the ``POST /allocations`` shape of 1.28, with ``mappings`` from 1.34 and
``consumer_type`` from 1.38). See :mod:`workbench.engine.reshaper`.
"""

from __future__ import annotations

from placement.policies import reshaper as policies
from placement.schemas import reshaper as schema

from workbench.api import errors, microversion, util
from workbench.api.handlers.allocation import consumer_write, schema_for
from workbench.engine import reshaper

SCHEMAS = (
    ((1, 38), schema.POST_RESHAPER_SCHEMA_V1_38),
    ((1, 34), schema.POST_RESHAPER_SCHEMA_V1_34),
    ((1, 30), schema.POST_RESHAPER_SCHEMA),
)


@errors.wsgify
@microversion.version_handler("1.30")
@util.require_content("application/json")
def reshape(req):
    req.context.can(policies.RESHAPE)
    data = util.extract_json(req.body, schema_for(req, SCHEMAS))
    consumers = {consumer: consumer_write(req, part) for consumer, part in data["allocations"].items()}
    reshaper.reshape(req.graph, data["inventories"], consumers)
    return util.no_content(req)
