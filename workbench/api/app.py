"""The WSGI application: ``make_app(conf, graph)``.

The middleware, from the outside in (the order Placement's deploy.py uses):

  HTTPProxyToWSGI      honour X-Forwarded-Proto & co when configured to
  RequestId            an ``openstack-request-id`` per request, echoed in
                       error bodies; a missing or ``*/*`` Accept becomes
                       JSON, so errors are JSON unless HTML is asked for
  CORS                 only when ``[cors] allowed_origin`` is set
  NoAuthMiddleware     noauth2 tokens (see :mod:`workbench.api.auth`)
  ContextMiddleware    the request context, with this app's policy enforcer
  FaultWrapper         anything unexpected: a 500 in Placement's error shape
  Microversion         microversion-parse: version header in, version out
  Router               the routes and their handlers (:mod:`workbench.api.routes`)

``graph`` is a :class:`workbench.graphdb.db.Graph`, or a zero-argument callable
returning one: it is then called on the first request that needs the graph
(so a pre-forking server connects in each worker, after the fork).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import microversion_parse.middleware
import oslo_middleware
import webob.exc
from oslo_config import cfg
from oslo_middleware import request_id
from placement import conf as placement_conf

from workbench.api import auth, microversion, policy, routes
from workbench.api.errors import json_error_formatter
from workbench.api.request import ENV_GRAPH
from workbench.graphdb.db import Graph

LOG = logging.getLogger(__name__)


def make_conf(**groups: dict) -> cfg.ConfigOpts:
    """Placement's options with their defaults, noauth2, and ``groups`` on top:
    ``make_conf(oslo_policy={"enforce_new_defaults": True}, cors={"allowed_origin": [...]})``."""
    conf = cfg.ConfigOpts()
    placement_conf.register_opts(conf)
    # Required by Placement's options, never used: the graph is the store.
    conf.set_default("connection", "sqlite://", group="placement_database")
    # No config files: /etc/placement/placement.conf must not leak in.
    conf([], project="placement", default_config_files=[])
    conf.set_override("auth_strategy", "noauth2", group="api")
    for group, options in groups.items():
        for name, value in options.items():
            conf.set_override(name, value, group=group)
    return conf


class LazyGraph:
    """The graph, connected once, on first use, by whichever thread gets there first."""

    def __init__(self, graph: Graph | Callable[[], Graph]):
        self._graph = graph if isinstance(graph, Graph) else None
        self._factory = None if isinstance(graph, Graph) else graph
        self._lock = threading.Lock()

    def __call__(self) -> Graph:
        if self._graph is None:
            with self._lock:
                if self._graph is None:
                    self._graph = self._factory()
        return self._graph


class FaultWrapper:
    """Turn an uncaught exception into a 500 with Placement's error body."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        try:
            return self.application(environ, start_response)
        except Exception as unexpected:  # noqa: BLE001 - a bug; the client still gets an answer
            LOG.exception("unexpected error in the Placement API: %s", unexpected)
            error = webob.exc.HTTPInternalServerError(str(unexpected), json_formatter=json_error_formatter)
            return error.generate_response(environ, start_response)


class DefaultAcceptJSON:
    """A missing or ``*/*`` Accept means JSON, so error bodies are JSON."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        if environ.get("HTTP_ACCEPT") in (None, "", "*/*"):
            environ["HTTP_ACCEPT"] = "application/json"
        return self.application(environ, start_response)


class PlacementApp:
    """The assembled application; ``conf``, ``enforcer`` and ``graph`` are kept for inspection."""

    def __init__(self, conf: cfg.ConfigOpts, graph, policy_rules: dict[str, str] | None = None):
        if conf.api.auth_strategy != "noauth2":
            raise ValueError(
                f"auth_strategy {conf.api.auth_strategy!r} is not supported: the workbench serves noauth2 only"
            )
        self.conf, self.graph = conf, LazyGraph(graph)
        self.enforcer = policy.make_enforcer(conf, policy_rules)
        app = routes.Router()
        app = microversion_parse.middleware.MicroversionMiddleware(
            app, microversion.SERVICE_TYPE, microversion.VERSIONS, json_error_formatter=json_error_formatter
        )
        app = FaultWrapper(app)
        app = auth.ContextMiddleware(app, self.enforcer, conf)
        app = auth.NoAuthMiddleware(app)
        if conf.cors.allowed_origin:
            app = oslo_middleware.CORS.factory({}, **conf.cors)(app)
        app = request_id.RequestId(DefaultAcceptJSON(app))
        self.application = oslo_middleware.HTTPProxyToWSGI(app, conf)

    def __call__(self, environ, start_response):
        environ[ENV_GRAPH] = self.graph
        return self.application(environ, start_response)


def make_app(conf: cfg.ConfigOpts, graph, policy_rules: dict[str, str] | None = None) -> PlacementApp:
    """The Placement API over ``graph`` (a Graph or a callable returning one).

    ``policy_rules`` replace the policy's rule set (see
    :func:`workbench.api.policy.make_enforcer`; the conformance suite's
    OpenPolicyFixture opens every rule this way).
    """
    return PlacementApp(conf, graph, policy_rules)
