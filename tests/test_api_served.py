"""`workbench serve` as clients meet it: a real gunicorn with several workers, over HTTP.

Workers share nothing but Neo4j, so capacity must hold across processes: claims racing through two workers
for the last units of a provider must never overcommit it (Placement's guarantee, which Nova relies on when
several schedulers claim at once). And the real `openstack` CLI (osc-placement) must be able to use it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from workbench.engine import loader
from workbench.scenario import parse
from workbench.graphdb.server import free_port

HEADERS = {"x-auth-token": "admin", "openstack-api-version": "placement 1.39", "content-type": "application/json"}
CAPACITY, CLIENTS = 8, 24
CLOUD = {"providers": [{"name": "cn1", "inventories": {"VCPU": CAPACITY, "MEMORY_MB": 4096}}]}


@pytest.fixture
def served(graph):
    """`workbench serve --workers 2` on the test session's Neo4j, with one 8-VCPU compute node loaded."""
    scenario = parse(CLOUD, "served.yaml")
    loader.load(graph, scenario, reset=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", str(port), "--workers", "2"],
        env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    banner, deadline = "", time.monotonic() + 120
    while "Placement API" not in banner and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        banner += line
    assert "Placement API" in banner, banner
    yield f"http://127.0.0.1:{port}", scenario.providers[0].uuid
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=HEADERS, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def test_claims_racing_through_two_workers_never_overcommit(served):
    base, cn1 = served

    def claim(_n: int) -> int:
        consumer = str(uuid.uuid4())
        body = {
            "allocations": {cn1: {"resources": {"VCPU": 1}}},
            "consumer_generation": None, "project_id": "p", "user_id": "u", "consumer_type": "INSTANCE",
        }  # fmt: skip
        return call("PUT", f"{base}/allocations/{consumer}", body)[0]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(claim, range(CLIENTS)))

    assert statuses.count(204) == CAPACITY
    assert statuses.count(409) == CLIENTS - CAPACITY
    status, usages = call("GET", f"{base}/resource_providers/{cn1}/usages")
    assert status == 200 and usages["usages"]["VCPU"] == CAPACITY
    status, allocations = call("GET", f"{base}/resource_providers/{cn1}/allocations")
    assert len(allocations["allocations"]) == CAPACITY  # every 204 is stored, nothing else


def test_the_openstack_cli_lists_providers_and_candidates(served):
    base, cn1 = served
    openstack = Path(sys.executable).with_name("openstack")
    common = [str(openstack), "--os-auth-type", "admin_token", "--os-endpoint", base, "--os-token", "admin"]
    listed = subprocess.run(
        [*common, "resource", "provider", "list", "-f", "json"], capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert [(p["uuid"], p["name"]) for p in json.loads(listed.stdout)] == [(cn1, "cn1")]

    candidates = subprocess.run(
        [*common, "--os-placement-api-version", "1.39", "allocation", "candidate", "list",
         "--resource", "VCPU=2", "--resource", "MEMORY_MB=1024", "-f", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert candidates.returncode == 0, candidates.stderr
    (row,) = json.loads(candidates.stdout)
    assert row["resource provider"] == cn1
    assert row["allocation"] == "MEMORY_MB=1024,VCPU=2"
