"""What handlers share: JSON bodies and query strings checked against
Placement's schemas, Accept and content-type checks, and JSON responses
(``util.Request`` is :class:`workbench.api.request.Request`, for annotations).

Bodies and query strings are validated with jsonschema against the schemas
imported from ``placement.schemas``, so a bad request gets Placement's own
words ("JSON does not validate: ...", "Invalid query string parameters: ...").
"""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any, Callable

import jsonschema
from oslo_utils import uuidutils

from workbench.api import microversion
from workbench.api.errors import http_error
from workbench.api.request import Request

# The "uuid" format Placement's schemas use, checked as Placement checks it.
FORMAT_CHECKER = jsonschema.FormatChecker()
FORMAT_CHECKER.checks("uuid")(uuidutils.is_uuid_like)


# -- requests ---------------------------------------------------------------------------------


def extract_json(body: bytes | str, schema: dict) -> Any:
    """The request body as JSON, valid against ``schema`` (400 in Placement's words otherwise)."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise http_error(400, f"Malformed JSON: {exc}")
    try:
        jsonschema.validate(data, schema, format_checker=FORMAT_CHECKER)
    except jsonschema.ValidationError as exc:
        raise http_error(400, f"JSON does not validate: {exc}")
    return data


def validate_query_params(req: Request, schema: dict) -> None:
    """The query string (as a dict, the last value of a repeated key) valid against ``schema``."""
    try:
        jsonschema.validate(dict(req.GET), schema, format_checker=jsonschema.FormatChecker())
    except (jsonschema.ValidationError, UnicodeDecodeError) as exc:
        raise http_error(400, f"Invalid query string parameters: {exc}")


def require_content(content_type: str) -> Callable:
    """Decorator: 415 unless the request body is ``content_type``."""

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def checked(req: Request):
            if req.content_type != content_type:
                raise http_error(
                    415, f"The media type {req.content_type or 'None'} is not supported, use {content_type}"
                )
            return func(req)

        return checked

    return decorator


def check_accept(*types: str) -> Callable:
    """Decorator: 406 if the client set an Accept header none of ``types`` satisfies."""

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def checked(req: Request):
            if req.accept and not req.accept.acceptable_offers(types):
                raise http_error(406, f"Only {', '.join(types)} is provided")
            return func(req)

        return checked

    return decorator


# -- responses ---------------------------------------------------------------------------------


def json_response(
    req: Request,
    body: Any,
    status: int = 200,
    last_modified: datetime.datetime | None = None,
    cached: bool = True,
):
    """``body`` as JSON; from 1.15 with ``cache-control: no-cache`` and ``last-modified``
    (unless ``cached`` is False: a few of Placement's write responses have neither).

    The graph keeps no timestamps, so ``last_modified`` defaults to now
    (which Placement too sends for anything it has no time for).
    """
    response = req.response
    response.status = status
    response.body = json.dumps(body).encode("utf-8")
    response.content_type = "application/json"
    if cached:
        cache_headers(req, last_modified)
    return response


def no_content(req: Request, status: int = 204, location: str | None = None):
    """An empty response (no content-type), with ``location`` if given."""
    response = req.response
    response.status = status
    response.content_type = None
    if location is not None:
        response.location = location
    return response


def cache_headers(req: Request, last_modified: datetime.datetime | None = None) -> None:
    """``cache-control: no-cache`` and ``last-modified``, from 1.15 only."""
    if req.version.matches(microversion.CACHE_HEADERS_VERSION):
        req.response.cache_control = "no-cache"
        req.response.last_modified = last_modified or datetime.datetime.now(datetime.timezone.utc)
