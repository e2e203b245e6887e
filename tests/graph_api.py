"""The graph's Placement app called in-process, the way the tests call the real Placement (the oracle):
``request(method, path, body, microversion) -> (status, JSON body)``."""

from __future__ import annotations

import json

import webob

from workbench.api.app import make_app, make_conf


class GraphAPI:
    def __init__(self, graph, headers: dict | None = None):
        self.app = make_app(make_conf(), graph)
        self.headers = {"x-auth-token": "admin", "accept": "application/json", **(headers or {})}

    def request(self, method, path, body=None, microversion="1.39"):
        response = self.call(method, path, body, microversion)
        return response.status_int, json.loads(response.body) if response.body else None

    def call(self, method, path, body=None, microversion="1.39"):
        """The whole WebOb response (for headers)."""
        req = webob.Request.blank(
            path, method=method, headers={**self.headers, "openstack-api-version": f"placement {microversion}"}
        )
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        return req.get_response(self.app)
