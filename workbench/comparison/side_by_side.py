"""The graph's service and the real Placement, both over HTTP, side by side (notebook 08).

:func:`start` serves both (:class:`~workbench.comparison.placement_serve.ServerProcess`), empties the
graph, and loads the same cloud into each through the REST API, as an operator's tools would.
:class:`Service` makes requests the way any HTTP client does (the token ``admin`` of ``noauth2``, one
microversion), shows each as the ``curl`` command that makes it, and runs the real ``openstack`` CLI
against itself.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from workbench.comparison.placement_serve import ServerProcess
from workbench.graphdb.db import Graph
from workbench.scenario import Scenario

MICROVERSION = "1.39"
HEADERS = {"x-auth-token": "admin", "openstack-api-version": f"placement {MICROVERSION}"}


class Service:
    """One service at ``url``; ``variable`` is the shell variable its curl commands use for the URL
    (``$GRAPH``, ``$PLACEMENT``), so that what is shown does not depend on the port of the day."""

    def __init__(self, name: str, url: str, variable: str):
        self.name, self.url, self.variable = name, url, variable

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        """(HTTP status, decoded JSON body or None), errors included."""
        headers = dict(HEADERS, **({"content-type": "application/json"} if body is not None else {}))
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def check(self, method: str, path: str, body: dict | None = None) -> dict | None:
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.name}: {method} {path} -> {status}: {json.dumps(answer)}")
        return answer

    def curl(self, method: str, path: str, body: dict | None = None) -> str:
        """The curl command making this request (to paste in a shell that sets the URL variable)."""
        parts = ["curl", "-s"] + (["-X", method] if method != "GET" else [])
        for name, value in HEADERS.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if body is not None:
            parts += ["-H", shlex.quote("content-type: application/json"), "-d", shlex.quote(json.dumps(body))]
        return " ".join(parts + [f'"${self.variable}{path}"'])

    def openstack(self, *arguments: str) -> list | dict:
        """Run the real `openstack` CLI (osc-placement) against this service; its parsed ``-f json`` output."""
        env = dict(
            os.environ, OS_AUTH_TYPE="admin_token", OS_ENDPOINT=self.url, OS_TOKEN="admin",
            OS_PLACEMENT_API_VERSION=MICROVERSION,
        )  # fmt: skip
        openstack = Path(sys.executable).with_name("openstack")
        done = subprocess.run(
            [str(openstack), *arguments, "-f", "json"], env=env, capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"{self.name}: openstack {' '.join(arguments)} failed:\n{done.stderr}")
        return json.loads(done.stdout)

    def load(self, scenario: Scenario) -> None:
        """Write a cloud through the REST API: classes and traits, providers parent-first with their
        inventories, traits and aggregates (each call passing the generation the last one returned),
        then each consumer's allocations."""
        for rc in scenario.resource_classes:
            self.check("PUT", f"/resource_classes/{quote(rc)}")
        for name in scenario.traits:
            self.check("PUT", f"/traits/{quote(name)}")
        for p in scenario.providers:
            body = {"uuid": p.uuid, "name": p.name, "parent_provider_uuid": p.parent_uuid}
            generation = self.check("POST", "/resource_providers", body)["generation"]
            path = f"/resource_providers/{p.uuid}"
            if p.inventories:
                inventories = {rc: inv.fields() for rc, inv in p.inventories.items()}
                body = {"resource_provider_generation": generation, "inventories": inventories}
                generation = self.check("PUT", f"{path}/inventories", body)["resource_provider_generation"]
            if p.traits:
                body = {"resource_provider_generation": generation, "traits": list(p.traits)}
                generation = self.check("PUT", f"{path}/traits", body)["resource_provider_generation"]
            if p.aggregates:
                body = {"resource_provider_generation": generation, "aggregates": list(p.aggregates)}
                self.check("PUT", f"{path}/aggregates", body)
        for c in scenario.consumers:
            if c.allocations:  # a consumer exists in Placement only through its allocations
                self.check("PUT", f"/allocations/{c.uuid}", claim_body(c.allocations, c.project, c.user))


def claim_body(allocations: dict, project: str, user: str, consumer_type: str = "INSTANCE") -> dict:
    """``PUT /allocations/{consumer}``'s body for a new consumer, from ``{provider: {class: amount}}``."""
    return {
        "allocations": {rp: {"resources": dict(resources)} for rp, resources in allocations.items()},
        "consumer_generation": None,  # a new consumer: Placement refuses if it exists already
        "project_id": project, "user_id": user, "consumer_type": consumer_type,
    }  # fmt: skip


class SideBySide:
    """Both services running, each loaded with ``scenario``; :meth:`stop` stops them.

    ``postgres``: the real Placement on a throwaway PostgreSQL rather than a SQLite file, which lets one
    writer in at a time (of two claims written at once, one may get 500 ``database is locked``)."""

    def __init__(self, scenario: Scenario, workers: int = 1, postgres: bool = False):
        with Graph.connect() as graph:
            graph.reset()  # the graph's service answers from this Neo4j: start it empty
        self._servers = [ServerProcess("graph", workers), ServerProcess("placement", workers, postgres)]
        try:
            for server in self._servers:
                server.launch()
            for server in self._servers:
                server.wait_ready()
            self.graph = Service("graph", self._servers[0].url, "GRAPH")
            self.placement = Service("real Placement", self._servers[1].url, "PLACEMENT")
            for service in self.services:
                service.load(scenario)
        except BaseException:
            self.stop()
            raise
        print(
            f"Both services up over HTTP on 127.0.0.1, each loaded with '{scenario.name}' through the REST API "
            f"({len(scenario.providers)} providers, {len(scenario.consumers)} consumers)."
        )

    @property
    def services(self) -> tuple[Service, Service]:
        return self.graph, self.placement

    def stop(self) -> None:
        for server in self._servers:
            server.stop()


def candidate_sets(rows: list[dict]) -> set[frozenset]:
    """`openstack allocation candidate list` rows as a set of candidates, each the set of
    (provider, class, amount) it takes: the answer itself, whatever order or numbering it is printed in."""
    candidates: dict[int, set] = {}
    for row in rows:
        for entry in row["allocation"].split(","):
            rc, amount = entry.split("=")
            candidates.setdefault(row["#"], set()).add((row["resource provider"], rc, int(amount)))
    return {frozenset(taken) for taken in candidates.values()}
