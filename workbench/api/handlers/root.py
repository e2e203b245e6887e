"""``GET /``: the version document clients negotiate with (no token needed)."""

from workbench.api import errors, microversion, util


@errors.wsgify
def home(req):
    version = {
        "id": f"v{microversion.MIN_VERSION}",
        "max_version": microversion.MAX_VERSION,
        "min_version": microversion.MIN_VERSION,
        "status": "CURRENT",
        # Relative on purpose: "this same URL", wherever the API is mounted.
        "links": [{"rel": "self", "href": ""}],
    }
    return util.json_response(req, {"versions": [version]})
