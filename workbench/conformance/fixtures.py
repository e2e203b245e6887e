"""The gabbi fixture module: upstream's 13 fixture classes, on the graph.

Placement's gabbi files name their fixtures (``fixtures: [APIFixture]``);
gabbi looks the names up in this module. Each class does what upstream's
(placement/tests/functional/fixtures/gabbits.py) does, on this backend:

* APIFixture: an empty graph, Placement's configuration with noauth2 and
  ``[oslo_policy] enforce_new_defaults`` off, and the 20 environment
  variables the YAML reads (random UUIDs, ``CUSTOM_IRON_NFV`` class names);
* SecureRBACPolicyFixture / LegacyRBACPolicyFixture: the same with
  ``enforce_new_defaults`` on / off;
* OpenPolicyFixture: every policy rule but ``admin_api`` opened to ``@``;
* CORSFixture: ``[cors] allowed_origin = http://valid.example.com`` and
  ``allow_headers = openstack-api-version``;
* the 8 topological fixtures: an APIFixture, then the cloud built by
  ``workbench.conformance.topologies.BUILDERS[<class name>](graph)``.

One fixture wraps one whole YAML file, so each file starts on an empty graph.
The app gabbi calls (:func:`setup_app`) is built lazily, on the first
request of a file, from the running fixture's configuration.
"""

from __future__ import annotations

import os
import uuid

from gabbi import fixture
from placement import policies

from workbench.api.app import make_app, make_conf
from workbench.graphdb.db import Graph

# Variables every APIFixture sets: fresh UUIDs, and these fixed names.
UUID_VARIABLES = (
    "RP_UUID", "RP_NAME", "RP_UUID1", "RP_NAME1", "RP_UUID2", "RP_NAME2",
    "PROJECT_ID", "ADMIN_PROJECT_ID", "SERVICE_PROJECT_ID", "USER_ID", "PROJECT_ID_ALT", "USER_ID_ALT",
    "INSTANCE_UUID", "MIGRATION_UUID", "CONSUMER_UUID", "PARENT_PROVIDER_UUID", "ALT_PARENT_PROVIDER_UUID",
)  # fmt: skip
FIXED_VARIABLES = {
    "CUSTOM_RES_CLASS": "CUSTOM_IRON_NFV",
    "CUSTOM_RES_CLASS1": "CUSTOM_IRON_NFV1",
    "CUSTOM_RES_CLASS2": "CUSTOM_IRON_NFV2",
}
CORS_ORIGIN = "http://valid.example.com"

_graph: Graph | None = None
_running: "APIFixture | None" = None


def use_graph(graph: Graph) -> None:
    """The graph the fixtures empty and the app serves (default: ``Graph.connect()``)."""
    global _graph
    _graph = graph


def _the_graph() -> Graph:
    global _graph
    if _graph is None:
        _graph = Graph.connect()
    return _graph


class LazyApp:
    """What gabbi's intercept gets: the running fixture's app, built on first request.

    gabbi calls the factory while it builds the suite, before any fixture
    has started, so the app cannot be built then.
    """

    def __call__(self, environ, start_response):
        if _running is None:
            raise RuntimeError("no gabbi fixture is running: the app has no configuration")
        return _running.app(environ, start_response)


def setup_app() -> LazyApp:
    return LazyApp()


class APIFixture(fixture.GabbiFixture):
    """An empty graph and Placement's configuration, noauth2, legacy policy defaults."""

    secure_rbac = False

    def start_fixture(self):
        global _running
        self.graph = _the_graph()
        self.graph.reset()
        self.conf = make_conf(oslo_policy={"enforce_new_defaults": self.secure_rbac})
        self.policy_rules: dict[str, str] | None = None
        self._app = None
        for name in UUID_VARIABLES:
            os.environ[name] = str(uuid.uuid4())
        os.environ.update(FIXED_VARIABLES)
        _running = self

    def stop_fixture(self):
        global _running
        _running = None

    @property
    def app(self):
        if self._app is None:
            self._app = make_app(self.conf, self.graph, policy_rules=self.policy_rules)
        return self._app


class SecureRBACPolicyFixture(APIFixture):
    """The new policy defaults, with scope: reader/member/admin, project and system."""

    secure_rbac = True


class LegacyRBACPolicyFixture(APIFixture):
    """The deprecated policy defaults (explicitly, though they are APIFixture's too)."""

    secure_rbac = False


class OpenPolicyFixture(APIFixture):
    """Every rule but the base ``admin_api`` open to anyone with a token."""

    def start_fixture(self):
        super().start_fixture()
        self.policy_rules = {rule.name: "@" for rule in policies.list_rules() if rule.name != "admin_api"}


class CORSFixture(APIFixture):
    """CORS on, for one origin."""

    def start_fixture(self):
        super().start_fixture()
        self.conf.set_override("allowed_origin", [CORS_ORIGIN], group="cors")
        self.conf.set_override("allow_headers", ["openstack-api-version"], group="cors")


class _TopologyFixture(APIFixture):
    """An APIFixture with the cloud of the upstream fixture of the same class name."""

    def start_fixture(self):
        super().start_fixture()
        try:
            from workbench.conformance.topologies import BUILDERS
        except ImportError:  # not written yet: the files run on an empty graph
            return
        build = BUILDERS.get(type(self).__name__)
        if build is not None:
            build(self.graph)


class AllocationFixture(_TopologyFixture):
    """One provider (VCPU, DISK_GB), three consumers, two users."""


class SharedStorageFixture(_TopologyFixture):
    """Two compute nodes and two sharing storage providers in one aggregate."""


class NonSharedStorageFixture(_TopologyFixture):
    """Three compute nodes with local disk; aggregates A, B, C."""


class NUMAAggregateFixture(_TopologyFixture):
    """Two compute nodes with NUMA cells, two sharing stores; aggregate C on a child."""


class NUMANetworkFixture(_TopologyFixture):
    """Two compute nodes with NUMA cells, FPGAs, VGPUs, SR-IOV and OVS agents, a sharing disk."""


class DeepNUMANetworkFixture(_TopologyFixture):
    """NUMANetworkFixture under a grandparent."""


class GranularFixture(_TopologyFixture):
    """cn_left / cn_middle / cn_right, two sharing disks and a sharing network."""


class NeutronQoSMultiSegmentFixture(_TopologyFixture):
    """Four computes with OVS and SR-IOV subtrees on a multi-segment network."""
