"""The route table: Placement's 19 routes, each method to its handler.

A handler is named ``"module.function"`` under :mod:`workbench.api.handlers`
and resolved when the router is built. A known path with a method it
does not take gets 405 with ``Allow``; an unknown path 404. Versions are
the handlers' business (``version_handler``): a route below the version
that introduced it is a 404 from the handler, after the 405 check, as in
Placement.
"""

from __future__ import annotations

import importlib
from typing import Callable

import routes

from workbench.api.errors import http_error

HANDLERS_PACKAGE = "workbench.api.handlers"

ROUTES: dict[str, dict[str, str]] = {
    "/": {"GET": "root.home"},
    # The root mounted under a prefix (/placement) arrives as the empty path.
    "": {"GET": "root.home"},
    "/resource_classes": {
        "GET": "resource_class.list_resource_classes",
        "POST": "resource_class.create_resource_class",
    },
    "/resource_classes/{name}": {
        "GET": "resource_class.get_resource_class",
        "PUT": "resource_class.update_resource_class",
        "DELETE": "resource_class.delete_resource_class",
    },
    "/resource_providers": {
        "GET": "resource_provider.list_resource_providers",
        "POST": "resource_provider.create_resource_provider",
    },
    "/resource_providers/{uuid}": {
        "GET": "resource_provider.get_resource_provider",
        "DELETE": "resource_provider.delete_resource_provider",
        "PUT": "resource_provider.update_resource_provider",
    },
    "/resource_providers/{uuid}/inventories": {
        "GET": "inventory.get_inventories",
        "POST": "inventory.create_inventory",
        "PUT": "inventory.set_inventories",
        "DELETE": "inventory.delete_inventories",
    },
    "/resource_providers/{uuid}/inventories/{resource_class}": {
        "GET": "inventory.get_inventory",
        "PUT": "inventory.update_inventory",
        "DELETE": "inventory.delete_inventory",
    },
    "/resource_providers/{uuid}/usages": {"GET": "usage.list_usages"},
    "/resource_providers/{uuid}/aggregates": {
        "GET": "aggregate.get_aggregates",
        "PUT": "aggregate.set_aggregates",
    },
    "/resource_providers/{uuid}/allocations": {"GET": "allocation.list_for_resource_provider"},
    "/allocations": {"POST": "allocation.set_allocations"},
    "/allocations/{consumer_uuid}": {
        "GET": "allocation.list_for_consumer",
        "PUT": "allocation.set_allocations_for_consumer",
        "DELETE": "allocation.delete_allocations",
    },
    "/allocation_candidates": {"GET": "allocation_candidate.list_allocation_candidates"},
    "/traits": {"GET": "trait.list_traits"},
    "/traits/{name}": {
        "GET": "trait.get_trait",
        "PUT": "trait.put_trait",
        "DELETE": "trait.delete_trait",
    },
    "/resource_providers/{uuid}/traits": {
        "GET": "trait.list_traits_for_resource_provider",
        "PUT": "trait.update_traits_for_resource_provider",
        "DELETE": "trait.delete_traits_for_resource_provider",
    },
    "/usages": {"GET": "usage.get_total_usages"},
    "/reshaper": {"POST": "reshaper.reshape"},
}


def resolve(name: str) -> Callable:
    """The handler function ``"module.function"`` of :mod:`workbench.api.handlers`."""
    module_name, _dot, function = name.partition(".")
    return getattr(importlib.import_module(f"{HANDLERS_PACKAGE}.{module_name}"), function)


class Router:
    """The WSGI app behind the middleware: match the route, call its handler."""

    def __init__(self, declarations: dict[str, dict[str, str]] = ROUTES):
        self.mapper = routes.Mapper()
        for path, methods in declarations.items():
            for method, target in methods.items():
                # Resolved once here, not on every request.
                self.mapper.connect(path, action=resolve(target), conditions={"method": [method]})
            # Matched only when no method above did: the 405.
            self.mapper.connect(path, action=None, allowed=", ".join(methods))

    def __call__(self, environ, start_response):
        # Errors found here are raised: the microversion middleware stamps
        # them with the version and renders them (a 405 is a response, as in Placement).
        length = environ.get("CONTENT_LENGTH")
        try:
            if length and int(length) > 0 and not environ.get("CONTENT_TYPE"):
                raise http_error(400, "content-type header required when content-length > 0")
        except ValueError:
            raise http_error(400, "content-length header must be an integer") from None
        match = self.mapper.match(environ=environ)
        if match is None:
            raise http_error(404)
        handler, allowed = match.pop("action"), match.pop("allowed", None)
        if handler is None:
            not_allowed = http_error(405, "The method specified is not allowed for this resource.", headers={"allow": allowed})
            return not_allowed(environ, start_response)
        environ["wsgiorg.routing_args"] = ((), match)
        return handler(environ, start_response)
