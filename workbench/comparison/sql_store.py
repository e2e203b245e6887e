"""The same candidate search on a SQL store: Placement's own database.

"Hold the algorithm fixed and swap the store." :class:`CandidateSearch`
asks its named questions and combines the answers in Python; here each
question is asked in SQL over the schema the real Placement 16.0.0 builds
(its tables ``resource_providers``, ``inventories``, ``allocations``,
``traits``, ``placement_aggregates`` and their link tables), with rows of the
same shape as the Cypher's, so the combiner cannot tell the stores apart.
:class:`workbench.comparison.oracle.PlacementOracle` fills such a database
through Placement itself; :func:`find_sql` answers a query on it.

Where the Cypher walks ``PARENT_OF*0..`` (a provider's root, a tree's
providers, a lineage), the SQL walks ``parent_provider_id`` with a
recursive CTE, storing no root, like the graph: that is :data:`SQL`, the
default. Placement also keeps a derived ``root_provider_id`` (maintained on
every re-parent); :data:`SQL_WITH_ROOT_COLUMN` reads the roots from it
instead (lineages, for ``same_subtree``, still climb). :data:`MARIADB_SQL`
and :data:`MARIADB_SQL_WITH_ROOT_COLUMN` are the same queries for MariaDB.

The queries are templates: ``{json_agg}``, ``{json_array}`` and ``{integer}``
are the few words the dialects spell differently, and
``{strings:NAME}``, ``{lists:NAME}``, ``{requests}`` read a list parameter
(sent as JSON) as rows; ``{root_of}``, ``{climb}`` and ``{descend}`` are the
tree walks. Parameters are always bound, never formatted into the text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any, Iterator

import sqlalchemy

from workbench.engine.candidates import CandidateSearch, QueryTrace, _cycle_collector_paused
from workbench.engine.request import CandidateRequest, parse

# -- the tree walks ---------------------------------------------------------------

# Up from each provider of `start (id)` to its root; `depth` counts the steps
# up, so a lineage can be listed from the root down.
CLIMB = """
climb (provider_id, ancestor_id, parent_id, depth) AS (
  SELECT rp.id, rp.id, rp.parent_provider_id, 0
  FROM resource_providers rp
  WHERE rp.id IN (SELECT id FROM start)
  UNION ALL
  SELECT climb.provider_id, up.id, up.parent_provider_id, climb.depth + 1
  FROM climb
  JOIN resource_providers up ON up.id = climb.parent_id
)"""

# The root of each provider of `start`: the ancestor (or itself) with no parent.
ROOT_OF_BY_CLIMBING = (
    CLIMB
    + """,
root_of (provider_id, root_id) AS (
  SELECT provider_id, ancestor_id FROM climb WHERE parent_id IS NULL
)"""
)

ROOT_OF_BY_COLUMN = """
root_of (provider_id, root_id) AS (
  SELECT id, root_provider_id FROM resource_providers WHERE id IN (SELECT id FROM start)
)"""

# Every provider of the trees whose roots are `top (id)`, walking down.
DESCEND_BY_WALKING = """
tree (provider_id, root_id) AS (
  SELECT id, id FROM resource_providers WHERE id IN (SELECT id FROM top)
  UNION ALL
  SELECT child.id, tree.root_id
  FROM tree
  JOIN resource_providers child ON child.parent_provider_id = tree.provider_id
)"""

DESCEND_BY_COLUMN = """
tree (provider_id, root_id) AS (
  SELECT id, root_provider_id FROM resource_providers WHERE root_provider_id IN (SELECT id FROM top)
)"""

# -- usage and capacity, as Placement computes them ----------------------------------

# Usage is the sum of the allocations against one inventory (provider and class).
# (Indented for its place in a select list.)
USED = """(SELECT coalesce(sum(allocation.used), 0)
          FROM allocations allocation
          WHERE allocation.resource_provider_id = inv.resource_provider_id
            AND allocation.resource_class_id = inv.resource_class_id)"""

# (total - reserved) * allocation_ratio, truncated as Placement's int() does.
# For an integer usage, used + amount <= capacity exactly when it is <= the
# untruncated product, so the truncated value serves the check too.
CAPACITY = "CAST(floor((inv.total - inv.reserved) * inv.allocation_ratio) AS {integer})"

# -- the questions -------------------------------------------------------------------

KNOWN_NAMES = """
-- Placement's tables list every resource class and trait, standard and custom.
SELECT (SELECT coalesce({json_agg}(name), {json_array}()) FROM resource_classes) AS classes,
       (SELECT coalesce({json_agg}(name), {json_array}()) FROM traits) AS traits
"""

WORLD = """
-- Two facts that pick the code path, as in Placement: is anything nested,
-- and which providers share their inventory through aggregates?
SELECT EXISTS (SELECT 1 FROM resource_providers WHERE parent_provider_id IS NOT NULL) AS has_trees,
       (SELECT coalesce({json_agg}(rp.uuid), {json_array}())
        FROM resource_providers rp
        JOIN resource_provider_traits rpt ON rpt.resource_provider_id = rp.id
        JOIN traits trait ON trait.id = rpt.trait_id
        WHERE trait.name = :sharing_trait) AS sharing
"""

# Which providers have room: the arithmetic, shared by the queries below that
# find the providers in scope (`in_scope (provider_id, root_id)`) their own
# way. The amount must fit the inventory's min_unit, max_unit and step_size,
# and the usage plus the amount its capacity.
_WITH_ROOM = """
offer AS (
  SELECT request.key, request.amount, rp.uuid AS provider, root.uuid AS root, inv.max_unit,
         {used} AS used,
         {capacity} AS capacity
  FROM request
  JOIN resource_classes rc ON rc.name = request.resource_class
  JOIN inventories inv ON inv.resource_class_id = rc.id
  JOIN in_scope ON in_scope.provider_id = inv.resource_provider_id
  JOIN resource_providers rp ON rp.id = in_scope.provider_id
  JOIN resource_providers root ON root.id = in_scope.root_id
  WHERE inv.min_unit <= request.amount AND request.amount <= inv.max_unit
    AND mod(request.amount, inv.step_size) = 0
    AND (request.tree_root IS NULL OR root.uuid = request.tree_root)
),
with_room AS (SELECT * FROM offer WHERE used + amount <= capacity)"""

# One row per requested class, the providers as a list, as the Cypher.
_PROVIDERS_BY_KEY = """
SELECT with_room.key, {json_agg}({json_array}(provider, root, used, capacity, max_unit)) AS providers
FROM with_room
GROUP BY with_room.key
"""

# The whole cloud: the providers with an inventory of a class asked for, and their roots.
_EVERY_TREE = """
WITH RECURSIVE
request AS ({requests}),
start (id) AS (
  SELECT inv.resource_provider_id
  FROM request
  JOIN resource_classes rc ON rc.name = request.resource_class
  JOIN inventories inv ON inv.resource_class_id = rc.id
),{root_of},
in_scope AS (SELECT provider_id, root_id FROM root_of),"""

PROVIDERS_WITH_CAPACITY = (
    """
-- Providers that can give `amount` of one resource class by themselves, and
-- the root of each one's tree, in the whole cloud."""
    + _EVERY_TREE
    + _WITH_ROOM
    + _PROVIDERS_BY_KEY
)

PROVIDERS_IN_TREES_WITH_CAPACITY = (
    """
-- The same question for some trees only (a page of trees, or the in_tree
-- target): start from their roots and walk down, so the cost follows the
-- trees asked about. Sharing providers are asked about wherever they are,
-- since they may serve these trees.
WITH RECURSIVE
request AS ({requests}),
top (id) AS (SELECT id FROM resource_providers WHERE uuid IN ({strings:roots})),{descend},
start (id) AS (SELECT id FROM resource_providers WHERE uuid IN ({strings:sharing})),{root_of},
in_scope AS (
  SELECT provider_id, root_id FROM tree
  UNION
  SELECT provider_id, root_id FROM root_of
),"""
    + _WITH_ROOM
    + _PROVIDERS_BY_KEY
)

ROOT_PAGE = """
-- With a limit, trees are searched a page at a time, in UUID order, until
-- enough candidates are found (the unique index on uuid gives the order).
SELECT coalesce({json_agg}(uuid ORDER BY uuid), {json_array}()) AS roots
FROM (SELECT uuid FROM resource_providers
      WHERE uuid > :after AND parent_provider_id IS NULL
      ORDER BY uuid
      LIMIT :size) AS page
"""

ROOT_PAGE_WITH_ROOM = (
    """
-- ROOT_PAGE without the trees that have no room: a tree is on the page only
-- if, for each class each group asks for, a provider of the tree has room for
-- the group's amount. (Asked only when no provider shares: a sharing provider
-- can give a tree what it lacks.) Here every provider with room, and its
-- root, is found before the page is cut; the Cypher looks at one tree at a
-- time, in UUID order, until the page is full."""
    + _EVERY_TREE
    + _WITH_ROOM
    + """
SELECT coalesce({json_agg}(root ORDER BY root), {json_array}()) AS roots
FROM (SELECT root FROM with_room
      WHERE root > :after
      GROUP BY root
      HAVING count(DISTINCT with_room.key) = (SELECT count(*) FROM request)
      ORDER BY root
      LIMIT :size) AS page
"""
)

SHARING_ANCHORS = """
-- The trees a sharing provider serves: every tree with a provider in one of
-- its aggregates (its own tree included, since it is in its own aggregates).
WITH RECURSIVE
membership (sharing_id, member_id) AS (
  SELECT sharing.id, member.resource_provider_id
  FROM resource_providers sharing
  JOIN resource_provider_aggregates own ON own.resource_provider_id = sharing.id
  JOIN resource_provider_aggregates member ON member.aggregate_id = own.aggregate_id
  WHERE sharing.uuid IN ({strings:sharing})
),
start (id) AS (SELECT member_id FROM membership),{root_of}
SELECT sharing.uuid AS provider, {json_agg}(DISTINCT anchor.uuid) AS anchors
FROM membership
JOIN resource_providers sharing ON sharing.id = membership.sharing_id
JOIN root_of ON root_of.provider_id = membership.member_id
JOIN resource_providers anchor ON anchor.id = root_of.root_id
GROUP BY sharing.uuid
"""

ROOTS_OF = """
-- The root of each given provider's tree.
WITH RECURSIVE
start (id) AS (SELECT id FROM resource_providers WHERE uuid IN ({strings:uuids})),{root_of}
SELECT rp.uuid AS provider, root.uuid AS root
FROM root_of
JOIN resource_providers rp ON rp.id = root_of.provider_id
JOIN resource_providers root ON root.id = root_of.root_id
"""

# A provider's trait names.
_HAS_TRAIT = """
has_trait (provider_id, name) AS (
  SELECT rpt.resource_provider_id, trait.name
  FROM resource_provider_traits rpt
  JOIN traits trait ON trait.id = rpt.trait_id
)"""

ROOTS_WITH_TRAITS = (
    """
-- root_required: roots with every required trait and none of the forbidden ones.
WITH"""
    + _HAS_TRAIT
    + """
SELECT root.uuid AS root
FROM resource_providers root
WHERE root.parent_provider_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM ({strings:required}) AS required
                  WHERE required.item NOT IN (SELECT name FROM has_trait WHERE provider_id = root.id))
  AND NOT EXISTS (SELECT 1 FROM has_trait
                  WHERE provider_id = root.id AND name IN ({strings:forbidden}))
"""
)

PROVIDERS_IN_AGGREGATES = """
-- member_of: providers in at least one aggregate of every list (AND of ORs):
-- as many lists matched as there are lists.
WITH wanted (list_no, item) AS ({lists:member_of})
SELECT rp.uuid AS provider
FROM wanted
JOIN placement_aggregates agg ON agg.uuid = wanted.item
JOIN resource_provider_aggregates rpa ON rpa.aggregate_id = agg.id
JOIN resource_providers rp ON rp.id = rpa.resource_provider_id
GROUP BY rp.uuid
HAVING count(DISTINCT wanted.list_no) = (SELECT count(DISTINCT list_no) FROM wanted)
"""

PROVIDERS_WITH_TRAITS = """
-- A resourceless group (named in same_subtree) asks for providers by traits
-- alone: a trait of every list, and the root of each such provider's tree.
WITH RECURSIVE
wanted (list_no, item) AS ({lists:required}),
start (id) AS (
  SELECT rpt.resource_provider_id
  FROM wanted
  JOIN traits trait ON trait.name = wanted.item
  JOIN resource_provider_traits rpt ON rpt.trait_id = trait.id
  GROUP BY rpt.resource_provider_id
  HAVING count(DISTINCT wanted.list_no) = (SELECT count(DISTINCT list_no) FROM wanted)
),{root_of}
SELECT rp.uuid AS provider, root.uuid AS root
FROM root_of
JOIN resource_providers rp ON rp.id = root_of.provider_id
JOIN resource_providers root ON root.id = root_of.root_id
"""

TRAIT_HOLDERS = """
-- For each trait the request names: the providers that have it.
SELECT trait.name AS trait, {json_agg}(rp.uuid) AS providers
FROM traits trait
JOIN resource_provider_traits rpt ON rpt.trait_id = trait.id
JOIN resource_providers rp ON rp.id = rpt.resource_provider_id
WHERE trait.name IN ({strings:names})
GROUP BY trait.name
"""

LINEAGES = """
-- same_subtree: each provider's ancestors, from the root down to itself,
-- all in one row (one list is cheaper to send than a record each).
WITH RECURSIVE
start (id) AS (SELECT id FROM resource_providers WHERE uuid IN ({strings:uuids})),{climb},
lineage (provider_id, uuids) AS (
  SELECT climb.provider_id, {json_agg}(ancestor.uuid ORDER BY climb.depth DESC)
  FROM climb
  JOIN resource_providers ancestor ON ancestor.id = climb.ancestor_id
  GROUP BY climb.provider_id
)
SELECT coalesce({json_agg}(uuids), {json_array}()) AS lineages FROM lineage
"""

TREES = """
-- The provider summaries: every provider of the trees the answer uses, with
-- its parent, traits and, per resource class, capacity and usage. One row,
-- the providers as lists.
WITH RECURSIVE
top (id) AS (SELECT id FROM resource_providers WHERE uuid IN ({strings:roots})),{descend},
trait_names (provider_id, names) AS (
  SELECT rpt.resource_provider_id, {json_agg}(trait.name)
  FROM tree
  JOIN resource_provider_traits rpt ON rpt.resource_provider_id = tree.provider_id
  JOIN traits trait ON trait.id = rpt.trait_id
  GROUP BY rpt.resource_provider_id
),
inventory (provider_id, resource_class, capacity, used) AS (
  SELECT inv.resource_provider_id, rc.name,
         {capacity},
         {used}
  FROM tree
  JOIN inventories inv ON inv.resource_provider_id = tree.provider_id
  JOIN resource_classes rc ON rc.id = inv.resource_class_id
),
inventories_by_provider (provider_id, classes) AS (
  SELECT provider_id, {json_agg}({json_array}(resource_class, capacity, used))
  FROM inventory
  GROUP BY provider_id
)
SELECT coalesce({json_agg}({json_array}(
         rp.uuid, parent.uuid, root.uuid,
         coalesce(trait_names.names, {json_array}()),
         coalesce(inventories_by_provider.classes, {json_array}()))),
       {json_array}()) AS providers
FROM tree
JOIN resource_providers rp ON rp.id = tree.provider_id
JOIN resource_providers root ON root.id = tree.root_id
LEFT JOIN resource_providers parent ON parent.id = rp.parent_provider_id
LEFT JOIN trait_names ON trait_names.provider_id = rp.id
LEFT JOIN inventories_by_provider ON inventories_by_provider.provider_id = rp.id
"""

TEMPLATES = {
    "known_names": KNOWN_NAMES,
    "world": WORLD,
    "providers_with_capacity": PROVIDERS_WITH_CAPACITY,
    "providers_in_trees_with_capacity": PROVIDERS_IN_TREES_WITH_CAPACITY,
    "root_page": ROOT_PAGE,
    "root_page_with_room": ROOT_PAGE_WITH_ROOM,
    "sharing_anchors": SHARING_ANCHORS,
    "roots_of": ROOTS_OF,
    "roots_with_traits": ROOTS_WITH_TRAITS,
    "providers_in_aggregates": PROVIDERS_IN_AGGREGATES,
    "providers_with_traits": PROVIDERS_WITH_TRAITS,
    "trait_holders": TRAIT_HOLDERS,
    "lineages": LINEAGES,
    "trees": TREES,
}

# -- the dialects ---------------------------------------------------------------------


class _Parameter(str):
    """A snippet that reads a list parameter: ``{strings:uuids}`` formats it for ``uuids``."""

    def __format__(self, name: str) -> str:
        return self.format(name=name)


@dataclasses.dataclass(frozen=True)
class Dialect:
    json_agg: str
    json_array: str
    integer: str  # the type CAST gives an integer in
    strings: str  # rows (item) of a JSON list of strings
    lists: str  # rows (list_no, item) of a JSON list of lists of strings
    requests: str  # rows of the JSON list of per-class requests


POSTGRESQL = Dialect(
    json_agg="json_agg",
    json_array="json_build_array",
    integer="bigint",
    strings="SELECT value AS item FROM json_array_elements_text(CAST(:{name} AS json))",
    lists="SELECT any_of.list_no, item.value\n"
    "  FROM json_array_elements(CAST(:{name} AS json)) WITH ORDINALITY AS any_of (list, list_no),\n"
    "       json_array_elements_text(any_of.list) AS item",
    requests="SELECT * FROM json_to_recordset(CAST(:requests AS json))\n"
    "  AS request (key text, resource_class text, amount integer, tree_root text)",
)

# MariaDB 10.6+ (JSON_TABLE; JSON_ARRAYAGG with DISTINCT and ORDER BY since 10.5).
MARIADB = Dialect(
    json_agg="JSON_ARRAYAGG",
    json_array="JSON_ARRAY",
    integer="SIGNED",
    strings="SELECT item FROM JSON_TABLE(:{name}, '$[*]' COLUMNS (item VARCHAR(255) PATH '$')) AS given",
    lists="SELECT list_no, item FROM JSON_TABLE(:{name}, '$[*]' COLUMNS (\n"
    "    list_no FOR ORDINALITY, NESTED PATH '$[*]' COLUMNS (item VARCHAR(255) PATH '$'))) AS given",
    requests="SELECT * FROM JSON_TABLE(:requests, '$[*]' COLUMNS (\n"
    "    `key` VARCHAR(255) PATH '$.key', resource_class VARCHAR(255) PATH '$.resource_class',\n"
    "    amount INTEGER PATH '$.amount', tree_root VARCHAR(36) PATH '$.tree_root')) AS given",
)


def render(dialect: Dialect, root_column: bool = False) -> dict[str, str]:
    """The queries in ``dialect``; the roots from Placement's root_provider_id if ``root_column``."""
    words = {
        "json_agg": dialect.json_agg,
        "json_array": dialect.json_array,
        "integer": dialect.integer,
        "requests": dialect.requests,
        "strings": _Parameter(dialect.strings),
        "lists": _Parameter(dialect.lists),
        "climb": CLIMB,
        "root_of": ROOT_OF_BY_COLUMN if root_column else ROOT_OF_BY_CLIMBING,
        "descend": DESCEND_BY_COLUMN if root_column else DESCEND_BY_WALKING,
    }
    words["capacity"] = CAPACITY.format_map(words)
    words["used"] = USED
    return {name: template.format_map(words) for name, template in TEMPLATES.items()}


SQL = render(POSTGRESQL)  # the default: tree walks over parent_provider_id, like the graph
SQL_WITH_ROOT_COLUMN = render(POSTGRESQL, root_column=True)
MARIADB_SQL = render(MARIADB)
MARIADB_SQL_WITH_ROOT_COLUMN = render(MARIADB, root_column=True)

# Columns holding lists, which MariaDB's driver hands over as JSON text
# (psycopg2 decodes json itself), and the one boolean (MariaDB: 0 or 1).
JSON_COLUMNS = frozenset({"classes", "traits", "sharing", "providers", "roots", "anchors", "lineages"})
BOOLEAN_COLUMNS = frozenset({"has_trees"})


# -- reading ----------------------------------------------------------------------------


# PostgreSQL's text cannot hold NUL, which the search's request keys use to
# join a group's suffix to a class; the reader sends it as the unit separator
# (in no name or suffix Placement accepts) and turns it back in what it reads.
NUL, STAND_IN = "\x00", "\x1f"


class SqlReader:
    """Runs a search's queries on ``connection`` (in the transaction :func:`reading`
    opens), list parameters sent as JSON, rows returned as dicts."""

    def __init__(self, connection: sqlalchemy.Connection):
        self.connection = connection

    def read(self, text: str, **parameters: Any) -> list[dict]:
        bound = {k: json.dumps(_sendable(v)) if isinstance(v, (list, dict)) else v for k, v in parameters.items()}
        result = self.connection.execute(sqlalchemy.text(text), bound)
        keys = list(result.keys())
        return [{k: _decoded(k, v) for k, v in zip(keys, row)} for row in result]


def _sendable(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(NUL, STAND_IN)
    if isinstance(value, list):
        return [_sendable(v) for v in value]
    if isinstance(value, dict):
        return {k: _sendable(v) for k, v in value.items()}
    return value


def _decoded(column: str, value: Any) -> Any:
    if column in JSON_COLUMNS and isinstance(value, (str, bytes)):
        return json.loads(value)
    if column in BOOLEAN_COLUMNS:
        return bool(value)
    if isinstance(value, str):
        return value.replace(STAND_IN, NUL)
    return value


def queries_for(engine: sqlalchemy.Engine, root_column: bool = False) -> dict[str, str]:
    """The queries in the engine's dialect."""
    if engine.dialect.name == "postgresql":
        return SQL_WITH_ROOT_COLUMN if root_column else SQL
    if engine.dialect.name in ("mysql", "mariadb"):
        return MARIADB_SQL_WITH_ROOT_COLUMN if root_column else MARIADB_SQL
    raise ValueError(f"no SQL for the {engine.dialect.name} dialect (PostgreSQL and MariaDB only)")


class SqlCandidateSearch(CandidateSearch):
    """The graph's search, unchanged, asking its questions in SQL."""

    queries = SQL


@contextlib.contextmanager
def _engine(engine_or_url: sqlalchemy.Engine | str) -> Iterator[sqlalchemy.Engine]:
    if isinstance(engine_or_url, sqlalchemy.Engine):
        yield engine_or_url
        return
    engine = sqlalchemy.create_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def reading(engine: sqlalchemy.Engine) -> Iterator[SqlReader]:
    """A reader on one read-only REPEATABLE READ transaction: every query of a
    search sees the same snapshot, as in the graph's one read transaction."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            # Before any query: PostgreSQL takes it for the transaction begun,
            # MariaDB for the one its next query begins.
            connection.execute(sqlalchemy.text("SET TRANSACTION READ ONLY"))
            yield SqlReader(connection)


def find_sql(
    engine_or_url: sqlalchemy.Engine | str,
    query: str | CandidateRequest,
    trace: list[QueryTrace] | None = None,
    root_column: bool = False,
) -> dict:
    """The ``GET /allocation_candidates`` body (1.39) for ``query``, from a Placement database
    (a SQLAlchemy engine or URL); ``root_column``: read roots from root_provider_id."""
    request = parse(query) if isinstance(query, str) else query
    if trace is not None:
        trace.clear()
    with _engine(engine_or_url) as engine, reading(engine) as reader, _cycle_collector_paused():
        search = SqlCandidateSearch(reader, request, trace)
        search.queries = queries_for(engine, root_column)
        return search.run()
