"""Placement's error responses.

Every error leaves as WebOb's HTTP exception for its status, so titles,
stock texts ("The resource could not be found.") and the HTML body for
``Accept: text/html`` are WebOb's, as in Placement; with JSON they become
the API-WG body Placement sends::

    {"errors": [{"status": 404, "title": "Not Found", "detail": "...",
                 "code": "placement.undefined_code",       (from 1.23)
                 "request_id": "req-..."}]}

A 406 from version negotiation also says ``max_version`` and ``min_version``.
"""

from __future__ import annotations

import webob.dec
import webob.exc
from oslo_middleware import request_id

from workbench.api import microversion
from workbench.api.policy import PolicyNotAuthorized
from workbench.api.request import Request
from workbench.engine.errors import DEFAULT, PlacementError

# Where a handler leaves the error code for the formatter.
ENV_ERROR_CODE = "placement.error_code"


def json_error_formatter(body: str, status: str, title: str, environ: dict) -> dict:
    """WebOb's ``json_formatter`` hook: the error in Placement's JSON shape."""
    status_code = int(status.split(None, 1)[0])
    error = {"status": status_code, "title": title, "detail": webob.exc.strip_tags(body)}
    version = environ.get(microversion.MICROVERSION_ENVIRON)
    if version is not None and version.matches(microversion.ERROR_CODE_VERSION):
        error["code"] = environ.get(ENV_ERROR_CODE, DEFAULT)
    if request_id.ENV_REQUEST_ID in environ:
        error["request_id"] = environ[request_id.ENV_REQUEST_ID]
    # No version in the environ on a 406: the version header itself was refused,
    # so tell the client which versions there are.
    if status_code == 406 and microversion.MICROVERSION_ENVIRON not in environ:
        error["max_version"], error["min_version"] = microversion.MAX_VERSION, microversion.MIN_VERSION
    return {"errors": [error]}


def http_error(status: int, detail: str | None = None, code: str | None = None, **kwargs) -> webob.exc.HTTPException:
    """WebOb's exception for ``status``, formatted as Placement's JSON.

    ``code`` (one of :mod:`workbench.engine.errors`' codes) is what the body
    says from 1.23; the formatter finds it in the environ (see :class:`wsgify`).
    """
    exc = webob.exc.status_map[status](detail, json_formatter=json_error_formatter, **kwargs)
    exc.placement_code = code
    return exc


def from_placement_error(error: PlacementError) -> webob.exc.HTTPException:
    """An engine error as the HTTP error Placement would send."""
    return http_error(error.status, error.detail, error.code)


class wsgify(webob.dec.wsgify):
    """The decorator every handler wears (outermost), like Placement's PlacementWsgify.

    The handler gets a :class:`workbench.api.request.Request` and returns a
    response. Errors it raises, as WebOb HTTP exceptions (``http_error``) or as
    the engine's :class:`PlacementError`, become Placement's error responses
    with their error code.
    """

    RequestClass = Request

    def call_func(self, req, *args, **kwargs):
        try:
            return super().call_func(req, *args, **kwargs)
        except PlacementError as error:
            exc = from_placement_error(error)
        except PolicyNotAuthorized as denied:
            exc = http_error(403, str(denied))
        except webob.exc.HTTPException as caught:
            exc = caught
        exc.json_formatter = json_error_formatter
        code = getattr(exc, "placement_code", None)
        if code:
            req.environ[ENV_ERROR_CODE] = code
        raise exc

