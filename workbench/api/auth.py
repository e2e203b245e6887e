"""Who is asking: noauth2 tokens and the request context.

This is Placement's ``noauth2`` strategy, for a local demo or test server
without Keystone; nothing is verified:

* ``x-auth-token: admin`` is the user ``admin`` with the role ``admin``;
* ``x-auth-token: user:project`` is that user in that project, without roles;
* ``x-roles`` (comma-separated) replaces the roles, ``x-project-id`` /
  ``x-user-id`` are honoured, and ``openstack-system-scope: all`` makes the
  token system-scoped (it then has no project);
* no token: 401, except at ``/`` (the version document); WebOb's plain
  401 body, as Placement sends.

:class:`ContextMiddleware` then turns those headers into a
:class:`RequestContext` (oslo.context reads them) in
``environ['placement.context']``, whose ``can(action, target)`` asks the policy.
"""

from __future__ import annotations

import webob.dec
import webob.exc
from oslo_context import context as oslo_context
from oslo_middleware import request_id

from workbench.api import policy

ENV_CONTEXT = "placement.context"
ROOT_PATHS = ("/", "")


class RequestContext(oslo_context.RequestContext):
    """oslo.context's request context, with the app's policy enforcer and config."""

    def __init__(self, *args, enforcer=None, config=None, **kwargs):
        self.enforcer, self.config = enforcer, config
        super().__init__(*args, **kwargs)

    def can(self, action: str, target: dict | None = None, fatal: bool = True) -> bool:
        """May this caller do ``action`` to ``target`` (default: their own project and user)?

        Raises :class:`workbench.api.policy.PolicyNotAuthorized` (403) unless
        ``fatal`` is False, when it returns False instead.
        """
        if target is None:
            target = {"project_id": self.project_id, "user_id": self.user_id}
        try:
            return policy.authorize(self.enforcer, self, action, target)
        except policy.PolicyNotAuthorized:
            if fatal:
                raise
            return False


class NoAuthMiddleware:
    """noauth2: the token names the user and project; ``admin`` is an admin."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        if req.environ["PATH_INFO"] == "/":
            return self.application
        if "X-Auth-Token" not in req.headers:
            return webob.exc.HTTPUnauthorized()
        user_id, _sep, project_id = req.headers["X-Auth-Token"].partition(":")
        if "X-Roles" in req.headers:
            roles = req.headers["X-Roles"].split(",")
        else:
            # Keystone would expand implied roles; a test token names them all.
            roles = ["admin"] if user_id == "admin" else []
        req.headers["X-User-Id"] = user_id
        if not req.headers.get("OpenStack-System-Scope"):
            req.headers["X-Tenant-Id"] = project_id or user_id
        req.headers["X-Roles"] = ",".join(roles)
        return self.application


class ContextMiddleware:
    """Build the :class:`RequestContext` from the (noauth2 or Keystone) headers."""

    def __init__(self, application, enforcer, config):
        self.application, self.enforcer, self.config = application, enforcer, config

    @webob.dec.wsgify
    def __call__(self, req):
        ctx = RequestContext.from_environ(
            req.environ,
            request_id=req.environ.get(request_id.ENV_REQUEST_ID),
            enforcer=self.enforcer,
            config=self.config,
        )
        if ctx.user_id is None and req.environ["PATH_INFO"] not in ROOT_PATHS:
            return webob.exc.HTTPUnauthorized()
        req.environ[ENV_CONTEXT] = ctx
        return self.application
