"""The REST framework: versions, auth, policy, routing, error bodies, and `workbench serve`.

Requests go through the whole WSGI stack (``make_app``) in-process with
WebOb, against the session's real Neo4j; ``workbench serve`` runs as a real
gunicorn process. Expected values are Placement 16.0.0's documented
behaviour (api-ref, placement/microversion.py, the policy defaults) and
the texts its own gabbi files assert.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import webob

from workbench.api.app import make_app, make_conf
from workbench.engine import providers
from workbench.graphdb.server import free_port

ADMIN = {"x-auth-token": "admin"}
LATEST = {"openstack-api-version": "placement latest"}


@pytest.fixture
def app(graph):
    return make_app(make_conf(), graph)


def call(app, path, method="GET", headers=None, body=None):
    req = webob.Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    return req.get_response(app)


def only_error(response) -> dict:
    errors = response.json["errors"]
    assert len(errors) == 1
    return errors[0]


# -- versions ---------------------------------------------------------------------------------


def test_root_needs_no_token_and_names_the_versions(app):
    r = call(app, "/")
    assert r.status_int == 200
    version = r.json["versions"][0]
    assert (version["min_version"], version["max_version"], version["status"]) == ("1.0", "1.39", "CURRENT")
    # No header means the minimum version; every response says which one it got.
    assert r.headers["openstack-api-version"] == "placement 1.0"
    assert r.headers["vary"] == "openstack-api-version"


def test_version_negotiation(app):
    assert call(app, "/", headers=LATEST).headers["openstack-api-version"] == "placement 1.39"
    picked = call(app, "/", headers={"openstack-api-version": "placement 1.17"})
    assert picked.headers["openstack-api-version"] == "placement 1.17"

    # An unavailable version: 406, and the body tells the client what exists.
    too_new = call(app, "/", headers={"openstack-api-version": "placement 1.40"})
    assert too_new.status_int == 406
    error = only_error(too_new)
    assert "Unacceptable version header: 1.40" in error["detail"]
    assert (error["min_version"], error["max_version"]) == ("1.0", "1.39")

    malformed = call(app, "/", headers={"openstack-api-version": "placement 1.x"})
    assert malformed.status_int == 400
    assert "invalid version string: 1.x" in only_error(malformed)["detail"]


def test_a_route_below_its_version_is_not_found(app):
    # /resource_classes arrived in 1.2.
    assert call(app, "/resource_classes", headers={**ADMIN, "openstack-api-version": "placement 1.1"}).status_int == 404
    assert call(app, "/resource_classes", headers={**ADMIN, "openstack-api-version": "placement 1.2"}).status_int == 200


def test_cache_headers_from_1_15_only(app):
    old = call(app, "/resource_classes", headers={**ADMIN, "openstack-api-version": "placement 1.14"})
    assert "cache-control" not in old.headers and "last-modified" not in old.headers
    new = call(app, "/resource_classes", headers={**ADMIN, "openstack-api-version": "placement 1.15"})
    assert new.headers["cache-control"] == "no-cache"
    assert new.headers["last-modified"].endswith(" GMT")


# -- routing and error bodies -------------------------------------------------------------------


def test_error_body_shape_and_codes_from_1_23(app):
    before = call(app, "/no-such-thing", headers={**ADMIN, "openstack-api-version": "placement 1.22"})
    assert before.status_int == 404
    error = only_error(before)
    assert error["status"] == 404 and error["title"] == "Not Found"
    assert error["request_id"].startswith("req-") and "code" not in error
    after = only_error(call(app, "/no-such-thing", headers={**ADMIN, "openstack-api-version": "placement 1.23"}))
    assert after["code"] == "placement.undefined_code"
    # The request id in the body is the one in the response header.
    r = call(app, "/no-such-thing", headers=ADMIN)
    assert only_error(r)["request_id"] == r.headers["x-openstack-request-id"]


def test_html_errors_for_browsers(app):
    r = call(app, "/no-such-thing", headers={**ADMIN, "accept": "text/html"})
    assert r.status_int == 404
    assert r.content_type == "text/html" and b"<title>404 Not Found</title>" in r.body


def test_405_lists_the_allowed_methods(app):
    r = call(app, "/resource_classes", method="DELETE", headers={**ADMIN, **LATEST})
    assert r.status_int == 405
    assert sorted(r.headers["allow"].split(", ")) == ["GET", "POST"]
    assert "The method DELETE is not allowed for this resource." in only_error(r)["detail"]
    assert only_error(r)["title"] == "Method Not Allowed"


def test_every_route_of_placement_has_a_handler():
    from workbench.api import routes

    for methods in routes.ROUTES.values():
        for name in methods.values():
            assert callable(routes.resolve(name)), name
    # Placement's table (handler.py ROUTE_DECLARATIONS): 19 paths ("" is the root
    # under a prefix), 37 (path, method) handlers.
    assert len(routes.ROUTES) == 19
    assert sum(len(methods) for methods in routes.ROUTES.values()) == 37
    assert routes.ROUTES["/allocations/{consumer_uuid}"].keys() == {"GET", "PUT", "DELETE"}


def test_bad_bodies_are_refused_and_change_nothing(app, graph):
    headers = {**ADMIN, **LATEST}
    bad = call(app, "/resource_classes", method="POST", headers=headers, body={"name": "NOT_CUSTOM"})
    assert bad.status_int == 400
    assert "JSON does not validate" in only_error(bad)["detail"]
    malformed = webob.Request.blank("/resource_classes", method="POST", headers=headers)
    malformed.body, malformed.content_type = b"{nope", "application/json"
    assert "Malformed JSON" in only_error(malformed.get_response(app))["detail"]
    wrong_type = webob.Request.blank("/resource_classes", method="POST", headers=headers)
    wrong_type.body, wrong_type.content_type = b"name=CUSTOM_X", "text/plain"
    refused = wrong_type.get_response(app)
    assert refused.status_int == 415
    assert "The media type text/plain is not supported, use application/json" in only_error(refused)["detail"]
    assert graph.read("MATCH (rc:ResourceClass) RETURN count(rc) AS n")[0]["n"] == 0


def test_wrong_accept_is_406(app):
    r = call(app, "/resource_classes", headers={**ADMIN, **LATEST, "accept": "text/plain"})
    assert r.status_int == 406
    # The client refused JSON, so the error comes as plain text (WebOb's choice, as in Placement).
    assert r.content_type == "text/plain" and "Only application/json is provided" in r.text


def test_cors_only_for_the_configured_origin(graph):
    app = make_app(make_conf(cors={"allowed_origin": ["http://ok.example.com"]}), graph)
    preflight = {"origin": "http://ok.example.com", "access-control-request-method": "GET"}
    allowed = call(app, "/resource_providers", method="OPTIONS", headers=preflight)
    assert allowed.status_int == 200
    assert allowed.headers["access-control-allow-origin"] == "http://ok.example.com"
    other = call(app, "/resource_providers", method="OPTIONS", headers={**preflight, "origin": "http://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers
    # Without [cors] allowed_origin there is no CORS layer: OPTIONS is just a method the route lacks.
    plain = call(make_app(make_conf(), graph), "/resource_providers", method="OPTIONS", headers={**ADMIN, **preflight})
    assert plain.status_int == 405


# -- auth and policy --------------------------------------------------------------------------


def test_a_token_is_needed_except_at_the_root(app):
    assert call(app, "/resource_classes", headers=LATEST).status_int == 401
    assert call(app, "/", headers=LATEST).status_int == 200


def test_policy_refuses_a_plain_user(graph):
    app = make_app(make_conf(), graph)
    user = {"x-auth-token": "alice:demo", **LATEST}
    r = call(app, "/traits", headers=user)
    assert r.status_int == 403
    assert "Policy does not allow placement:traits:list to be performed." in only_error(r)["detail"]
    # The service role may (the default rule is "role:admin or role:service").
    assert call(app, "/traits", headers={**user, "x-roles": "service"}).status_int == 200
    # Opened rules (what the OpenPolicyFixture does): anyone with a token.
    opened = make_app(make_conf(), graph, policy_rules={"placement:traits:list": "@"})
    assert call(opened, "/traits", headers=user).status_int == 200


def test_secure_rbac_enforces_scope(graph):
    app = make_app(make_conf(oslo_policy={"enforce_new_defaults": True}), graph)
    # traits:list is a project-scoped rule: an admin with a project token may,
    # the same role on a system-scoped token may not.
    project_admin = {"x-auth-token": "admin:project", "x-roles": "admin", **LATEST}
    system_admin = {**project_admin, "openstack-system-scope": "all"}
    assert call(app, "/traits", headers=project_admin).status_int == 200
    assert call(app, "/traits", headers=system_admin).status_int == 403


# -- resource classes and traits ----------------------------------------------------------------


def test_resource_class_lifecycle(app):
    h = {**ADMIN, **LATEST}
    names = [rc["name"] for rc in call(app, "/resource_classes", headers=h).json["resource_classes"]]
    assert names[:3] == ["VCPU", "MEMORY_MB", "DISK_GB"] and len(names) == 21  # os-resource-classes 1.1.0
    created = call(app, "/resource_classes/CUSTOM_GOLD", method="PUT", headers=h)
    assert created.status_int == 201 and created.location == "http://localhost/resource_classes/CUSTOM_GOLD"
    assert call(app, "/resource_classes/CUSTOM_GOLD", method="PUT", headers=h).status_int == 204
    again = call(app, "/resource_classes", method="POST", headers=h, body={"name": "CUSTOM_GOLD"})
    assert again.status_int == 409
    standard = call(app, "/resource_classes/VCPU", method="DELETE", headers=h)
    assert standard.status_int == 400
    assert "Cannot delete standard resource class VCPU." in only_error(standard)["detail"]
    assert call(app, "/resource_classes/CUSTOM_GOLD", method="DELETE", headers=h).status_int == 204
    gone = call(app, "/resource_classes/CUSTOM_GOLD", headers=h)
    assert gone.status_int == 404 and "No such resource class CUSTOM_GOLD." in only_error(gone)["detail"]


def test_traits_filters_and_in_use(app, graph):
    h = {**ADMIN, **LATEST}
    assert call(app, "/traits/CUSTOM_FAST", method="PUT", headers=h).status_int == 201
    rp = providers.create_provider(graph, "cn1")
    providers.set_traits(graph, rp["uuid"], ["CUSTOM_FAST", "HW_CPU_X86_AVX2"], 0)
    custom = call(app, "/traits?name=startswith:CUSTOM_", headers=h).json["traits"]
    assert custom == ["CUSTOM_FAST"]
    associated = call(app, "/traits?associated=true", headers=h).json["traits"]
    assert sorted(associated) == ["CUSTOM_FAST", "HW_CPU_X86_AVX2"]
    in_use = call(app, "/traits/CUSTOM_FAST", method="DELETE", headers=h)
    assert in_use.status_int == 409
    assert "The trait CUSTOM_FAST is in use by a resource provider." in only_error(in_use)["detail"]
    bad = call(app, "/traits?associated=maybe", headers=h)
    assert bad.status_int == 400
    assert call(app, f"/resource_providers/{rp['uuid']}/traits", method="DELETE", headers=h).status_int == 204
    assert call(app, "/traits/CUSTOM_FAST", method="DELETE", headers=h).status_int == 204
    assert call(app, "/traits/HW_CPU_X86_AVX2", method="DELETE", headers=h).status_int == 400


# -- workbench serve ----------------------------------------------------------------------------


def _serve(port: int, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--workers", "1"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _get(url: str, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_serve_answers_and_stops_on_sigterm(neo4j_uri):
    port = free_port()
    proc = _serve(port)
    try:
        banner = ""
        deadline = time.monotonic() + 90
        while "Placement API" not in banner and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            banner += line
        assert f"http://127.0.0.1:{port}/" in banner, banner
        base = f"http://127.0.0.1:{port}"
        status, body = _get(base + "/", {**ADMIN, **LATEST})
        assert status == 200 and body["versions"][0]["max_version"] == "1.39"
        status, body = _get(base + "/traits", {**ADMIN, **LATEST})
        assert status == 200 and "HW_CPU_X86_AVX2" in body["traits"]
        assert _get(base + "/resource_classes", LATEST)[0] == 401
        # A page that rebinds its own DNS name to 127.0.0.1 still sends its name: refused.
        status, body = _get(base + "/resource_providers", {**ADMIN, **LATEST, "Host": f"evil.example:{port}"})
        assert status == 403 and "evil.example" in body["errors"][0]["detail"]
        assert _get(f"http://localhost:{port}/", LATEST)[0] == 200
        # A cross-origin page may send a token only after a preflight, which is never granted.
        preflight = urllib.request.Request(
            base + "/resource_providers", method="OPTIONS",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "x-auth-token"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(preflight, timeout=30) as response:
                allowed = response.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as error:
            allowed = error.headers.get("Access-Control-Allow-Origin")
        assert allowed is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Placement API stopped" in rest


def test_serve_says_when_the_port_is_taken(neo4j_uri):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _serve(taken.getsockname()[1])
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "already in use" in err


def test_serve_says_when_neo4j_is_unreachable():
    proc = _serve(free_port(), env={"NEO4J_URI": f"bolt://127.0.0.1:{free_port()}"})
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "cannot reach Neo4j" in err


# -- workbench conformance ------------------------------------------------------------------------


def test_conformance_runs_placements_own_files(neo4j_uri, tmp_path):
    # microversion*.yaml and basic-http.yaml: 8 + 1 + 24 tests in Placement 16.0.0, all HTTP plumbing.
    report, table = tmp_path / "r.json", tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "conformance", "--neo4j-uri", neo4j_uri,
         "--only", "microversion", "--only", "basic-http", "--json", str(report), "--markdown", str(table)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "33 passed, 0 failed"
    results = json.loads(report.read_text())
    assert results["summary"] == {"passed": 33, "failed": 0, "total": 33, "files": 3}
    assert results["files"]["basic-http"]["tests"]["405 on bad method at root"] == {"status": "pass"}
    assert "| basic-http.yaml | APIFixture | 24 | 0 |  |" in table.read_text()
    assert "[3/3] microversion-bug-1724065.yaml: 1/1 passed" in proc.stderr


def test_conformance_baseline_flags_only_lost_tests():
    from workbench.conformance.run import FileResult, regressions

    now = FileResult("traits", ["APIFixture"], {"a": {"status": "pass"}, "b": {"status": "fail"}, "c": {"status": "fail"}})
    baseline = {"files": {"traits": {"tests": {"a": {"status": "fail"}, "b": {"status": "pass"}, "c": {"status": "fail"}}}}}
    # a got better, c still fails: neither is a regression; b passed before and fails now.
    assert regressions([now], baseline) == ["traits.yaml: b"]
