"""The real OpenStack Placement, run in-process on SQLite, as the comparison oracle.

:class:`PlacementOracle` is the real ``openstack-placement`` WSGI application
(``placement.deploy.loadapp``) called in-process at the API level: each request
is a WSGI call made with ``webob.Request.blank(...).get_response(app)``. There
is no socket and no network, and authentication is ``noauth2`` with the token
``admin``. Bodies are JSON; the microversion defaults to 1.39, the newest that
Placement 16.0.0 serves.

Process-global state (see ``/work/shared/reference/placement-oracle.md`` §5.2):

* ``placement.db_api.configure`` counts only once per process and the policy
  enforcer is a module global, so the app is built **once per process**, on
  first use, and shared by all oracles.
* Every oracle gets its own fresh in-memory SQLite database. As in Placement's
  own test fixture (``placement/tests/fixtures.py``), the engine is patched
  into the global ``placement_context_manager`` with ``patch_engine``. Several
  oracles may be open at once, so the oracle's factory is patched in for the
  length of each of its requests only, under a process-wide lock.
* The fresh database is a copy (``sqlite3`` backup, about 1 ms) of a template
  made once per process: schema created with ``migration.create_schema`` and
  then filled with the standard traits and resource classes by Placement's own
  ``deploy.update_database``. Building each database from scratch the same way
  takes about 7 ms; copying the template is quicker and gives the same result.

Given ``postgres=`` (the URL of a PostgreSQL server, such as
:class:`workbench.comparison.postgres.LocalPostgres` starts), an oracle gets a fresh
PostgreSQL database instead, the way Placement runs in production: a copy
(``CREATE DATABASE ... TEMPLATE``) of a template database built the same way
once per server, dropped again when the oracle closes. Given ``mariadb=`` (a
server such as :class:`workbench.comparison.mariadb.LocalMariaDB` starts), the
same on MariaDB, Placement's most common backend (a database built afresh).

Given ``settings=`` (``{group: {option: value}}``, for example
``{"workarounds": {"optimize_for_wide_provider_trees": True}}``), an oracle
runs Placement with those configuration options overridden, for its own
requests only: :data:`NON_DEFAULT_SETTINGS` names the options that change how
allocation candidates are generated.

Importing this module is cheap; Placement (about 2 s of imports) is imported
the first time an oracle is created.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote, urlencode

if TYPE_CHECKING:  # pragma: no cover
    from workbench.scenario import Scenario

DEFAULT_MICROVERSION = "1.39"
AUTH_TOKEN = "admin"  # noauth2: the token "admin" gives the admin role

# Loggers Placement and its libraries write to. Placement warns about normal
# events (an inventory set below its usage, an allocation over capacity); the
# oracle reports those through the HTTP status and body instead.
_QUIET_LOGGERS = (
    "placement",
    "oslo_db",
    "oslo_policy",
    "oslo_concurrency",
    "oslo_config",
    "oslo.messaging",
    "alembic",
    "keystonemiddleware",
    "keystoneauth",
    "routes",
    "stevedore",
)

# Placement 16.0.0's options that change how allocation candidates are
# generated (placement/conf/placement.py and workarounds.py), each set away
# from its default: -1 (no limit), "depth-first" and False.
NON_DEFAULT_SETTINGS = {
    "max_allocation_candidates": {"placement": {"max_allocation_candidates": 2}},
    "breadth_first": {"placement": {"allocation_candidates_generation_strategy": "breadth-first"}},
    "wide_provider_trees": {"workarounds": {"optimize_for_wide_provider_trees": True}},
}

# One lock for everything that touches Placement's global database wiring.
_LOCK = threading.RLock()
_RUNTIME: "_Runtime | None" = None
_POSTGRES_TEMPLATE = "placement_template"
_POSTGRES_TEMPLATES_MADE: set[str] = set()  # server URLs
_POSTGRES_DATABASES = itertools.count()


class OracleError(RuntimeError):
    """A call made while loading or by a checking helper got a non-2xx answer."""

    def __init__(self, method: str, path: str, body: Any, status: int, response: Any):
        self.method, self.path, self.request_body = method, path, body
        self.status, self.response = status, response
        sent = "" if body is None else f"\n  sent: {json.dumps(body, sort_keys=True)}"
        super().__init__(f"{method} {path} -> {status}{sent}\n  answer: {json.dumps(response, sort_keys=True)}")


@dataclasses.dataclass
class _Runtime:
    """What is built once per process: the config, the app and the template DB."""

    conf: Any
    app: Any
    template: Any  # sqlite3.Connection holding an empty, synced Placement DB
    template_engine: Any  # kept referenced so its pooled connection stays open
    context_manager: Any  # placement.db_api.placement_context_manager
    create_engine: Any  # oslo_db.sqlalchemy.engines.create_engine
    webob_request: Any  # webob.Request


def _quiet_logging() -> None:
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def _runtime() -> _Runtime:
    """Build the Placement app once per process (thread-safe)."""
    global _RUNTIME
    with _LOCK:
        if _RUNTIME is not None:
            return _RUNTIME
        _quiet_logging()
        with warnings.catch_warnings():
            # webob/compat.py: "'cgi' is deprecated" (harmless on 3.11)
            warnings.simplefilter("ignore", DeprecationWarning)
            import webob
        from oslo_config import cfg
        from oslo_db.sqlalchemy import engines
        from placement import conf as placement_conf
        from placement import db_api, deploy
        from placement.db.sqlalchemy import migration
        from placement.objects import resource_class, trait

        conf = cfg.ConfigOpts()  # our own object: never the global cfg.CONF
        placement_conf.register_opts(conf)
        # The required connection option must be set before parsing.
        conf.set_override("connection", "sqlite://", group="placement_database")
        conf.set_override("sync_on_startup", False, group="placement_database")
        conf.set_override("auth_strategy", "noauth2", group="api")
        conf([], default_config_files=[], default_config_dirs=[])
        db_api.configure(conf)  # @run_once: a no-op (with a warning) if already done
        _quiet_logging()  # oslo.log may have touched levels while registering

        # The template database: Placement's schema plus the standard traits
        # and resource classes, exactly as the test fixture builds it.
        template_engine = engines.create_engine("sqlite://")  # StaticPool: one connection
        migration.create_schema(template_engine)
        reset = db_api.placement_context_manager.patch_engine(template_engine)
        try:
            trait._TRAITS_SYNCED = False
            resource_class._RESOURCE_CLASSES_SYNCED = False
            app = deploy.loadapp(conf)  # middleware + policy + update_database (sync)
        finally:
            reset()
        template = template_engine.raw_connection().driver_connection
        _RUNTIME = _Runtime(
            conf, app, template, template_engine, db_api.placement_context_manager, engines.create_engine, webob.Request
        )
        return _RUNTIME


def _postgres_admin(server: str, *statements: str) -> None:
    """Statements that cannot run in a transaction (CREATE/DROP DATABASE)."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for statement in statements:
                connection.execute(sqlalchemy.text(statement))
    finally:
        admin.dispose()


def _postgres_copy(rt: _Runtime, server: str, name: str):
    """A new database ``name`` on ``server``, copied from the template made
    (once per server and process) like the SQLite one: Placement's schema,
    then its standard traits and resource classes."""
    if server not in _POSTGRES_TEMPLATES_MADE:
        _postgres_admin(
            server, f"DROP DATABASE IF EXISTS {_POSTGRES_TEMPLATE}", f"CREATE DATABASE {_POSTGRES_TEMPLATE}"
        )
        template = rt.create_engine(f"{server}/{_POSTGRES_TEMPLATE}")
        try:
            _build_placement_database(rt, template)
        finally:
            template.dispose()  # a template must have no open connections to be copied
        _POSTGRES_TEMPLATES_MADE.add(server)
    _postgres_admin(server, f'CREATE DATABASE "{name}" TEMPLATE {_POSTGRES_TEMPLATE}')
    return rt.create_engine(f"{server}/{name}")


def _mariadb_admin(server: str, statement: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(server)
    try:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(statement))
    finally:
        admin.dispose()


def _mariadb_database(rt: _Runtime, server: str, name: str):
    """A new database ``name`` on a MariaDB (or MySQL) ``server`` (see
    :mod:`workbench.comparison.mariadb`), built like the SQLite template:
    Placement's schema, then its standard traits and resource classes. MariaDB
    has no template databases; building one takes about a second."""
    _mariadb_admin(server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    engine = rt.create_engine(f"{server}/{name}?charset=utf8mb4")
    _build_placement_database(rt, engine)
    return engine


def _build_placement_database(rt: _Runtime, engine) -> None:
    """Placement's schema on an empty database, then its standard traits and resource classes (the sync
    Placement runs at start-up, forced to run again for this database)."""
    from placement import deploy
    from placement.db.sqlalchemy import migration
    from placement.objects import resource_class, trait

    migration.create_schema(engine)
    reset = rt.context_manager.patch_engine(engine)
    try:
        trait._TRAITS_SYNCED = False
        resource_class._RESOURCE_CLASSES_SYNCED = False
        deploy.update_database(rt.conf)
    finally:
        reset()


@dataclasses.dataclass
class SQLCapture:
    """The SQL statements Placement sent to SQLite while a capture was open."""

    statements: list[str] = dataclasses.field(default_factory=list)
    parameters: list[Any] = dataclasses.field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of statements executed (an ``executemany`` counts once)."""
        return len(self.statements)

    @property
    def lines(self) -> int:
        """Total number of lines of SQL text, as SQLAlchemy rendered it."""
        return sum(len(s.strip().splitlines()) for s in self.statements)

    def kinds(self) -> dict[str, int]:
        """Statement counts by first keyword (SELECT, INSERT, UPDATE, ...)."""
        counts: dict[str, int] = {}
        for statement in self.statements:
            words = statement.split(None, 1)
            kind = words[0].upper() if words else ""
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds().items()))
        return f"{self.count} statements ({kinds}), {self.lines} lines of SQL"

    def text(self) -> str:
        """All statements, separated by blank lines, each ending in ';'."""
        return "\n\n".join(s.strip() + ";" for s in self.statements)

    def __len__(self) -> int:
        return self.count


class PlacementOracle:
    """The real Placement with its own empty in-memory database.

    Use as a context manager or call :meth:`close`. All methods are safe to
    call from several threads (requests are serialised).
    """

    def __init__(
        self,
        microversion: str = DEFAULT_MICROVERSION,
        postgres: str | None = None,
        mariadb: str | None = None,
        settings: dict[str, dict[str, Any]] | None = None,
    ):
        self.microversion = microversion
        self.postgres = postgres
        self.mariadb = mariadb
        self.settings = {group: dict(options) for group, options in (settings or {}).items()}
        rt = _runtime()
        self._rt = rt
        with _LOCK:
            if postgres:
                self._database = f"placement_{os.getpid()}_{next(_POSTGRES_DATABASES)}"
                engine = _postgres_copy(rt, postgres, self._database)
            elif mariadb:
                self._database = f"placement_{os.getpid()}_{next(_POSTGRES_DATABASES)}"
                engine = _mariadb_database(rt, mariadb, self._database)
            else:
                engine = rt.create_engine("sqlite://")
                raw = engine.raw_connection()
                try:
                    rt.template.backup(raw.driver_connection)
                finally:
                    raw.close()  # back to the StaticPool; the database lives on
            # patch_engine builds the per-engine transaction factory the way
            # Placement's fixture does; keep the factory and unpatch at once.
            reset = rt.context_manager.patch_engine(engine)
            self._factory = rt.context_manager._root_factory
            reset()
        self.engine = engine
        self._closed = False

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.engine.dispose()
            if self.postgres:
                _postgres_admin(self.postgres, f'DROP DATABASE IF EXISTS "{self._database}"')
            if self.mariadb:
                _mariadb_admin(self.mariadb, f"DROP DATABASE IF EXISTS `{self._database}`")

    def __enter__(self) -> "PlacementOracle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        """Make this oracle's database the one Placement uses, for one call."""
        if self._closed:
            raise RuntimeError("this PlacementOracle is closed")
        with _LOCK, self._settings_applied():
            reset = self._rt.context_manager.patch_factory(self._factory)
            try:
                yield
            finally:
                reset()

    @contextlib.contextmanager
    def _settings_applied(self) -> Iterator[None]:
        """This oracle's settings on the shared configuration (hold ``_LOCK``)."""
        conf = self._rt.conf
        for group, options in self.settings.items():
            for name, value in options.items():
                conf.set_override(name, value, group=group)
        try:
            yield
        finally:
            for group, options in self.settings.items():
                for name in options:
                    conf.clear_override(name, group=group)

    def wsgi(self, environ, start_response):
        """The real Placement app on this oracle's database and settings, as a WSGI callable.

        For a WSGI client such as gabbi's intercept; the caller sends its own
        headers (token, microversion).
        """
        with self._active():
            return self._rt.app(environ, start_response)

    # -- the API ---------------------------------------------------------------
    def request(
        self, method: str, path: str, body: Any = None, microversion: str | None = None
    ) -> tuple[int, dict | None]:
        """Make one API call; return (HTTP status, decoded JSON body or None).

        ``path`` may carry a query string, which is passed on verbatim.
        """
        resp = self._call(method, path, body, microversion)
        data = None
        if resp.body:
            try:
                data = json.loads(resp.body)
            except ValueError:
                data = {"text": resp.text}
        return resp.status_int, data

    def _call(self, method: str, path: str, body: Any, microversion: str | None):
        """The in-process WSGI call itself; returns the webob response."""
        headers = {
            "X-Auth-Token": AUTH_TOKEN,
            "OpenStack-API-Version": f"placement {microversion or self.microversion}",
            "Accept": "application/json",
        }
        req = self._rt.webob_request.blank(path, method=method.upper(), headers=headers)
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        with self._active():
            return req.get_response(self._rt.app)

    def _check(self, method: str, path: str, body: Any = None, microversion: str | None = None) -> dict | None:
        status, data = self.request(method, path, body, microversion)
        if not 200 <= status < 300:
            raise OracleError(method, path, body, status, data)
        return data

    # -- loading -------------------------------------------------------------------
    def load(self, scenario: "Scenario") -> None:
        """Write a scenario through the REST API, as an operator would.

        Custom classes and traits, then providers parent-first with their
        inventories, traits and aggregates, then each consumer's allocations.
        Quotas are not a Placement concept and are ignored. Raises
        :class:`OracleError` on the first non-2xx answer.
        """
        for rc in scenario.resource_classes:
            self._check("PUT", f"/resource_classes/{quote(rc)}")
        for name in scenario.traits:
            self._check("PUT", f"/traits/{quote(name)}")
        for p in scenario.providers:
            created = self._check(
                "POST",
                "/resource_providers",
                {"uuid": p.uuid, "name": p.name, "parent_provider_uuid": p.parent_uuid},
            )
            generation = created["generation"]
            if p.inventories:
                generation = self._check(
                    "PUT",
                    f"/resource_providers/{p.uuid}/inventories",
                    {
                        "resource_provider_generation": generation,
                        "inventories": {rc: inv.fields() for rc, inv in p.inventories.items()},
                    },
                )["resource_provider_generation"]
            if p.traits:
                generation = self._check(
                    "PUT",
                    f"/resource_providers/{p.uuid}/traits",
                    {"resource_provider_generation": generation, "traits": list(p.traits)},
                )["resource_provider_generation"]
            if p.aggregates:
                self._check(
                    "PUT",
                    f"/resource_providers/{p.uuid}/aggregates",
                    {"resource_provider_generation": generation, "aggregates": list(p.aggregates)},
                )
        for c in scenario.consumers:
            if not c.allocations:
                continue  # a consumer exists in Placement only through its allocations
            body = _allocations_body(c.allocations, c.project, c.user, c.consumer_type, None)
            self._check("PUT", f"/allocations/{c.uuid}", body)

    def load_bulk(self, scenario: "Scenario") -> None:
        """Write a scenario through Placement's object layer: the same result as :meth:`load`, much faster.

        The REST path spends most of its time on HTTP-level work (JSON schema
        checks, middleware, one transaction per call): about 25 ms per call.
        Here the providers are written with the calls Placement's own handlers
        make (``ResourceClass.create``, ``Trait.create``,
        ``ResourceProvider.create``, ``set_inventory``, ``set_traits``,
        ``set_aggregates`` with the generation incremented, as since
        microversion 1.19), in transactions of whole trees on this oracle's
        database, so generations, inventories, traits and aggregates come out
        as :meth:`load` leaves them (checked by ``tests/test_bench.py``).
        Inventories carry every field explicitly: the object layer's own
        ``Inventory`` defaults to ``max_unit=1``, the API to the maximum integer.

        Consumers and their allocations then go through the REST API, many
        consumers per ``POST /allocations`` (about 6 ms a consumer instead of
        25 ms with one ``PUT`` each; a filled benchmark cloud has tens of
        thousands). On an error the object layer's
        exception propagates and the oracle may hold part of the scenario:
        use a fresh oracle.
        """
        from placement import context as placement_context
        from placement.objects import resource_class as rc_obj
        from placement.objects import trait as trait_obj

        with self._active():
            ctx = placement_context.RequestContext(
                user_id="admin", project_id="admin", roles=["admin"], config=self._rt.conf
            )
            with self._rt.context_manager.writer.using(ctx):
                for name in scenario.resource_classes:
                    rc_obj.ResourceClass(ctx, name=name).create()
                for name in scenario.traits:
                    trait_obj.Trait(ctx, name=name).create()
            ctx.rc_cache.clear()
            traits: dict[str, Any] = {}  # name -> Trait object, looked up once
            # One session holding every provider of a large cloud gets slower
            # with each flush, so commit every few thousand providers.
            for chunk in scenario.tree_chunks(BULK_PROVIDERS_PER_TRANSACTION):
                with self._rt.context_manager.writer.using(ctx):
                    _write_providers(ctx, chunk, traits)
        holding = [c for c in scenario.consumers if c.allocations]
        for start in range(0, len(holding), BULK_CONSUMERS_PER_POST):
            self._check("POST", "/allocations", {
                c.uuid: _allocations_body(c.allocations, c.project, c.user, c.consumer_type, None)
                for c in holding[start : start + BULK_CONSUMERS_PER_POST]
            })

    def analyze(self) -> None:
        """Table statistics for a server database's planner, as autovacuum gathers them in
        service (within a minute of a large write): a database timed right after a bulk load
        would otherwise be planned blind. Nothing to do on SQLite."""
        import sqlalchemy

        if self.engine.dialect.name == "sqlite":
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sqlalchemy.text("ANALYZE"))

    def allocation_candidates_raw(self, query: str, microversion: str | None = None) -> tuple[int, bytes]:
        """``GET /allocation_candidates?<query>`` as (status, response body bytes), not decoded.

        The same in-process WSGI call as :meth:`allocation_candidates`, without
        the client-side ``json.loads``: what the benchmark times.
        """
        resp = self._call("GET", f"/allocation_candidates?{query.lstrip('?')}", None, microversion)
        return resp.status_int, resp.body

    def config(self) -> dict[str, Any]:
        """The Placement settings that shape allocation-candidate answers and their cost."""
        with _LOCK, self._settings_applied():
            return self._config()

    def _config(self) -> dict[str, Any]:
        conf = self._rt.conf
        return {
            "randomize_allocation_candidates": conf.placement.randomize_allocation_candidates,
            "max_allocation_candidates": conf.placement.max_allocation_candidates,
            "allocation_candidates_generation_strategy": conf.placement.allocation_candidates_generation_strategy,
            "optimize_for_wide_provider_trees": conf.workarounds.optimize_for_wide_provider_trees,
            "database": (
                f"PostgreSQL {self.postgres} (loopback)" if self.postgres
                else f"MariaDB {self.mariadb} (loopback)" if self.mariadb else "sqlite:// (in memory, in process)"
            ),
            "microversion": self.microversion,
        }

    # -- queries and helpers -------------------------------------------------------
    def allocation_candidates(self, query: str, microversion: str | None = None) -> tuple[int, dict | None]:
        """``GET /allocation_candidates?<query>``, the query string verbatim."""
        query = query.lstrip("?")
        return self.request("GET", f"/allocation_candidates?{query}", microversion=microversion)

    def put_allocations(
        self,
        consumer_uuid: str,
        allocations: dict[str, dict[str, int]],
        project: str,
        user: str,
        consumer_type: str = "INSTANCE",
        consumer_generation: int | None = None,
    ) -> tuple[int, dict | None]:
        """``PUT /allocations/{consumer}`` from ``{provider_uuid: {rc: amount}}``.

        Returns (status, body) without raising: 204 on success, 409 on a
        generation conflict or lack of capacity, 400 on a bad request.
        """
        body = _allocations_body(allocations, project, user, consumer_type, consumer_generation)
        return self.request("PUT", f"/allocations/{consumer_uuid}", body)

    def get_allocations(self, consumer_uuid: str) -> dict:
        """``GET /allocations/{consumer}`` (an unknown consumer gives empty allocations)."""
        return self._check("GET", f"/allocations/{consumer_uuid}")

    def usages(self, project: str, user: str | None = None, consumer_type: str | None = None) -> dict:
        """``GET /usages``: since 1.38 grouped by consumer type."""
        params = {"project_id": project}
        if user is not None:
            params["user_id"] = user
        if consumer_type is not None:
            params["consumer_type"] = consumer_type
        return self._check("GET", f"/usages?{urlencode(params)}")

    def provider_usages(self, uuid: str) -> dict:
        """``GET /resource_providers/{uuid}/usages``."""
        return self._check("GET", f"/resource_providers/{uuid}/usages")

    @contextlib.contextmanager
    def capture_sql(self) -> Iterator[SQLCapture]:
        """Record the SQL Placement sends to this oracle's SQLite while open.

        >>> with oracle.capture_sql() as sql:
        ...     oracle.allocation_candidates("resources=VCPU:1")
        >>> print(sql.summary())
        """
        from sqlalchemy import event

        capture = SQLCapture()

        def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
            capture.statements.append(statement)
            capture.parameters.append(parameters)

        event.listen(self.engine, "before_cursor_execute", before_cursor_execute)
        try:
            yield capture
        finally:
            event.remove(self.engine, "before_cursor_execute", before_cursor_execute)


BULK_PROVIDERS_PER_TRANSACTION = 2000
BULK_CONSUMERS_PER_POST = 1000


def _write_providers(ctx, providers, traits: dict) -> None:
    """Create providers (parents first) with the object-layer calls of Placement's handlers."""
    from placement.objects import inventory as inv_obj
    from placement.objects import resource_provider as rp_obj
    from placement.objects import trait as trait_obj

    for p in providers:
        rp = rp_obj.ResourceProvider(ctx, uuid=p.uuid, name=p.name, parent_provider_uuid=p.parent_uuid)
        rp.create()  # POST /resource_providers
        if p.inventories:  # PUT .../inventories
            rp.set_inventory(
                [
                    inv_obj.Inventory(resource_provider=rp, resource_class=rc, **inv.fields())
                    for rc, inv in p.inventories.items()
                ]
            )
        if p.traits:  # PUT .../traits
            for name in p.traits:
                if name not in traits:
                    traits[name] = trait_obj.Trait.get_by_name(ctx, name)
            rp.set_traits([traits[name] for name in p.traits])
        if p.aggregates:  # PUT .../aggregates (1.19+: the generation goes up)
            rp.set_aggregates(list(p.aggregates), increment_generation=True)


def _allocations_body(allocations, project, user, consumer_type, consumer_generation) -> dict:
    return {
        "allocations": {rp: {"resources": dict(resources)} for rp, resources in allocations.items()},
        "consumer_generation": consumer_generation,
        "project_id": project,
        "user_id": user,
        "consumer_type": consumer_type,
    }
