"""The request object handlers get: a WebOb request with the context, the graph and the version at hand."""

from __future__ import annotations

import webob

from workbench.api import microversion

ENV_GRAPH = "workbench.graph"  # a zero-argument callable returning the Graph


class Request(webob.Request):
    """A WebOb request with what a handler needs at hand."""

    @property
    def context(self):
        """The :class:`workbench.api.auth.RequestContext`: user, project, roles, ``can()``."""
        return self.environ["placement.context"]

    @property
    def version(self):
        """The request's ``microversion_parse.Version``; ``req.version.matches((1, 15))``."""
        return self.environ[microversion.MICROVERSION_ENVIRON]

    @property
    def graph(self):
        """The :class:`workbench.graphdb.db.Graph` (connected on first use)."""
        return self.environ[ENV_GRAPH]()

    def path_item(self, name: str) -> str | None:
        """A named part of the URL path (``{uuid}``, ``{name}``...), as given."""
        try:
            return self.environ["wsgiorg.routing_args"][1][name]
        except (KeyError, IndexError):
            return None

    def url_for(self, path: str) -> str:
        """``path`` under the application's mount point (WebOb makes Location absolute)."""
        return self.environ.get("SCRIPT_NAME", "") + path
