"""HTTP handlers: one function per (route, method), thin over :mod:`workbench.engine`.

The pattern (``resource_class.py`` and ``trait.py`` follow it; copy them)::

    from placement.policies import resource_class as policies   # policy names
    from placement.schemas import resource_class as schema      # request schemas

    from workbench.api import errors, microversion, util
    from workbench.engine import catalog

    @errors.wsgify                                # outermost, always
    @microversion.version_handler("1.2")          # 404 below 1.2 (optional max, status)
    @util.check_accept("application/json")        # GETs: 406 for a wrong Accept
    def list_resource_classes(req):               # req: workbench.api.request.Request
        req.context.can(policies.LIST)            # 403 unless the policy allows
        names = catalog.list_resource_classes(req.graph)
        return util.json_response(req, {"resource_classes": [...]})

    @errors.wsgify
    @microversion.version_handler("1.2")
    @util.require_content("application/json")     # bodies: 415 for a wrong content-type
    def create_resource_class(req):
        req.context.can(policies.CREATE)          # policy BEFORE the body is read
        data = util.extract_json(req.body, schema.POST_RC_SCHEMA_V1_2)
        ...
        return util.no_content(req, 201, location=req.url_for(f"/resource_classes/{name}"))

The decorators keep Placement's order of checks: route/405 (router), 404
for the version, 406/415, then in the body: policy (403), body or query
schema (400), lookups (404), generations (409), domain rules.

What a handler has:

* ``req.context``: user_id, project_id, roles, system_scope, ``can(action,
  target=None)`` (target defaults to the caller's project and user);
* ``req.graph``: the :class:`workbench.graphdb.db.Graph`; pass it to engine functions;
* ``req.version``: a ``microversion_parse.Version``; ``req.version.matches((1, 14))``
  is ">= 1.14", ``matches((1, 14), (1, 19))`` a closed range;
* ``req.path_item("uuid")``: path parts; ``req.GET`` the query string
  (``req.GET.getall("member_of")`` for repeated keys);
* ``req.url_for("/resource_providers/" + uuid)``: links and ``Location``
  (WebOb makes ``Location`` absolute, as Placement's tests expect).

Responses: ``util.json_response(req, body, status=200, last_modified=None)``
(``cache-control: no-cache`` and ``last-modified`` from 1.15, never below),
``util.no_content(req, 204, location=None)``, or set ``req.response`` and
return it (``util.cache_headers(req)`` adds the 1.15 headers).

Errors: raise the engine's ``BadRequest`` / ``NotFound`` / ``Conflict``
(``workbench.engine.errors``; ``detail`` text and ``code``, e.g.
``Conflict(msg, CONCURRENT_UPDATE)``), or ``errors.http_error(status,
detail, code=None)`` for anything else. ``detail`` is Placement's text: the
tests match it. Versioned bodies: ``util.extract_json(req.body, schema)``
with the schema chosen from ``req.version``; query strings:
``util.validate_query_params(req, schema)``. Several implementations of one
route by version: ``microversion.by_version(("1.0", "1.6", old), ("1.7", None, new))``.

The route table (:mod:`workbench.api.routes`) names the handlers with
Placement's handler names:

* ``root.home``
* ``resource_class``: list_resource_classes, create_resource_class,
  get_resource_class, update_resource_class, delete_resource_class
* ``trait``: list_traits, get_trait, put_trait, delete_trait,
  list_traits_for_resource_provider, update_traits_for_resource_provider,
  delete_traits_for_resource_provider
* ``resource_provider``: list_resource_providers, create_resource_provider,
  get_resource_provider, update_resource_provider, delete_resource_provider
* ``inventory``: get_inventories, create_inventory, set_inventories,
  delete_inventories, get_inventory, update_inventory, delete_inventory
* ``aggregate``: get_aggregates, set_aggregates
* ``usage``: list_usages (per provider), get_total_usages (``/usages``)
* ``allocation``: list_for_resource_provider, set_allocations (POST
  /allocations), list_for_consumer, set_allocations_for_consumer, delete_allocations
* ``reshaper``: reshape
* ``allocation_candidate``: list_allocation_candidates

Trying a handler: ``make_app(make_conf(), graph)`` is a WSGI app; WebOb's
``webob.Request.blank(path, headers={"x-auth-token": "admin",
"openstack-api-version": "placement latest"}).get_response(app)`` calls it
in-process (see tests/test_api_framework.py), and ``workbench conformance
--only resource-provider`` runs Placement's gabbi files against it.
"""
