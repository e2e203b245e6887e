"""Errors with Placement's shape: an HTTP status, an error code and a detail.

Codes are Placement's own (placement/errors.py), so a caller can treat the
workbench and the real Placement alike.
"""

DEFAULT = "placement.undefined_code"
CONCURRENT_UPDATE = "placement.concurrent_update"
DUPLICATE_NAME = "placement.duplicate_name"
INVENTORY_INUSE = "placement.inventory.inuse"
PROVIDER_IN_USE = "placement.resource_provider.inuse"
PROVIDER_CANNOT_DELETE_PARENT = "placement.resource_provider.cannot_delete_parent"
PROVIDER_NOT_FOUND = "placement.resource_provider.not_found"
QUERY_DUPLICATE_KEY = "placement.query.duplicate_key"
QUERY_BAD_VALUE = "placement.query.bad_value"
QUERY_MISSING_VALUE = "placement.query.missing_value"


class PlacementError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, code: str = DEFAULT):
        super().__init__(detail)
        self.detail, self.code = detail, code

    def body(self) -> dict:
        """The JSON error body Placement returns (API-WG error format)."""
        return {"errors": [{"status": self.status, "title": self.title, "code": self.code, "detail": self.detail}]}


class BadRequest(PlacementError):
    status, title = 400, "Bad Request"


class NotFound(PlacementError):
    status, title = 404, "Not Found"


class Conflict(PlacementError):
    status, title = 409, "Conflict"
