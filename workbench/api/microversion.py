"""Placement's microversions, and handlers that exist only from (or up to) one.

A request names its version in ``openstack-api-version: placement X.Y``
(``latest`` is the newest; no header is 1.0). microversion-parse's
middleware turns the header into a ``microversion_parse.Version`` in
``environ[MICROVERSION_ENVIRON]`` (406 for a version we do not serve, 400
for a malformed one, exact texts from the library) and stamps every
response with the version and ``vary``.
"""

from __future__ import annotations

import functools
from typing import Callable

import microversion_parse
import webob.exc

SERVICE_TYPE = "placement"
MICROVERSION_ENVIRON = f"{SERVICE_TYPE}.microversion"

# What each version added (placement/microversion.py has the full notes).
CHANGES = {
    "1.0": "the initial API",
    "1.1": "provider aggregates",
    "1.2": "/resource_classes",
    "1.3": "member_of on GET /resource_providers",
    "1.4": "resources on GET /resource_providers",
    "1.5": "DELETE all inventories of a provider",
    "1.6": "/traits and provider traits",
    "1.7": "PUT /resource_classes/{name} creates or verifies, without a body",
    "1.8": "project_id and user_id required in PUT /allocations",
    "1.9": "GET /usages",
    "1.10": "GET /allocation_candidates",
    "1.11": "allocations link on providers",
    "1.12": "allocations as dicts with project_id and user_id",
    "1.13": "POST /allocations for many consumers",
    "1.14": "parent and root providers, in_tree",
    "1.15": "last-modified and cache-control headers",
    "1.16": "limit on allocation candidates",
    "1.17": "required traits on allocation candidates",
    "1.18": "required traits on GET /resource_providers",
    "1.19": "generations on provider aggregates",
    "1.20": "POST /resource_providers returns the provider",
    "1.21": "member_of on allocation candidates",
    "1.22": "forbidden traits",
    "1.23": "error codes in error bodies",
    "1.24": "repeated member_of",
    "1.25": "granular request groups",
    "1.26": "reserved may equal total",
    "1.27": "all inventories in provider summaries",
    "1.28": "consumer generations",
    "1.29": "nested providers in allocation candidates",
    "1.30": "POST /reshaper",
    "1.31": "in_tree on allocation candidates",
    "1.32": "forbidden aggregates (!member_of)",
    "1.33": "string suffixes for request groups",
    "1.34": "mappings in allocation requests",
    "1.35": "root_required",
    "1.36": "same_subtree and resourceless groups",
    "1.37": "re-parenting providers",
    "1.38": "consumer types",
    "1.39": "in: for required traits",
}
VERSIONS = list(CHANGES)
MIN_VERSION, MAX_VERSION = VERSIONS[0], VERSIONS[-1]
# Error bodies carry a "code" from this version on.
ERROR_CODE_VERSION = (1, 23)
# Responses carry cache-control and last-modified from this version on.
CACHE_HEADERS_VERSION = (1, 15)


def parse(version: str) -> microversion_parse.Version:
    return microversion_parse.parse_version_string(version)


def version_handler(min_version: str, max_version: str | None = None, status_code: int = 404) -> Callable:
    """Let the decorated handler answer only from ``min_version`` (to ``max_version``).

    Outside that range the request gets ``status_code`` (404: the resource
    does not exist at that version, as in Placement). Stack several
    versions of a handler with :func:`by_version` instead when their bodies differ.
    """
    low, high = parse(min_version), parse(max_version or MAX_VERSION)

    def decorator(func: Callable) -> Callable:
        @functools.wraps(func)
        def checked(req, *args, **kwargs):
            if not low <= req.environ[MICROVERSION_ENVIRON] <= high:
                raise webob.exc.status_map[status_code]()
            return func(req, *args, **kwargs)

        return checked

    return decorator


def by_version(*ranges: tuple[str, str | None, Callable], status_code: int = 404) -> Callable:
    """One handler made of versioned implementations: ``(min, max or None, func)`` each.

    The first range that holds the request's version answers; none: ``status_code``.
    """
    table = [(parse(low), parse(high or MAX_VERSION), func) for low, high, func in ranges]

    def dispatch(req, *args, **kwargs):
        version = req.environ[MICROVERSION_ENVIRON]
        for low, high, func in table:
            if low <= version <= high:
                return func(req, *args, **kwargs)
        raise webob.exc.status_map[status_code]()

    return dispatch
