"""The controlled experiment of issue 17: the algorithm held fixed, the store swapped.

Three measurements, each a function returning plain rows (the notebook and
``workbench bench-store`` show them; nothing here is typed in by hand):

* :func:`code_by_concern`: for each concern of the search (:data:`CONCERNS`),
  the code that asks the database, counted by one rule for all
  (:func:`code_lines`: lines that are neither blank nor only a comment): the
  Cypher of :mod:`workbench.engine.candidates` and the SQL of
  :mod:`workbench.comparison.sql_store`, each query as sent (a fragment two
  queries share counts in both, as in the database's log), the Placement
  16.0.0 functions that do that job (named; their Python source without
  comments and docstrings, :func:`python_code_lines`) and the SQL they rendered
  while answering :data:`CODE_REQUESTS` on the demo cloud (each statement
  credited to the innermost named function on the Python stack when it was
  sent, identical statements counted once, laid out by :func:`format_sql`).
* The hard case in three forms: :data:`workbench.engine.lessons.NUMA_AFFINITY_CANDIDATES`
  (one Cypher pattern), the engine's Python combiner (``candidates.find``) and
  :data:`NUMA_AFFINITY_SQL` (a recursive CTE over Placement's own tables),
  each giving Placement's allocation requests (:func:`hard_case_by_pattern`,
  :func:`hard_case_by_combiner`, :func:`hard_case_by_sql`).
* :func:`measure_search`: one search on one store (:func:`graph_store`,
  :func:`sql_store`) with, per named query, its time, rows and bytes, and the
  database's share of the search against Python's.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import json
import re
import sys
import time
import tokenize
from typing import Any, Callable

from workbench.comparison.compare import canonical_json
from workbench.engine import candidates, lessons
from workbench.engine.request import parse

# -- code per concern ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Concern:
    name: str
    queries: tuple[str, ...]  # names in candidates.CYPHER (and the SQL store's dict)
    placement: tuple[str, ...]  # "module:qualified.name" under placement.objects


CONCERNS = (
    Concern(
        "set-up: names, nesting, sharing providers",
        ("known_names", "world"),
        ("research_context:RequestWideSearchContext.__init__", "research_context:_has_provider_trees",
         "research_context:get_sharing_providers", "trait:ids_from_names"),
    ),
    Concern(
        "selection with capacity",
        ("providers_with_capacity", "providers_in_trees_with_capacity"),
        ("research_context:RequestGroupSearchContext.__init__", "research_context:_usage_select",
         "research_context:_capacity_check_clause", "research_context:get_providers_with_resource",
         "research_context:get_provider_ids_matching", "research_context:get_trees_matching_all"),
    ),
    Concern(
        "traits and aggregates",
        ("roots_with_traits", "providers_in_aggregates", "providers_with_traits", "trait_holders"),
        ("research_context:RequestWideSearchContext._process_anchor_traits",
         "research_context:get_providers_with_root", "research_context:_get_trees_with_traits",
         "research_context:_get_roots_with_traits", "research_context:provider_ids_matching_aggregates",
         "research_context:provider_ids_matching_required_traits",
         "research_context:get_provider_ids_having_any_trait",
         "research_context:get_provider_ids_for_traits_and_aggs"),
    ),
    Concern(
        "trees: roots, lineages, tree walks",
        ("roots_of", "lineages"),
        ("research_context:provider_ids_from_uuid", "allocation_candidate:_provider_ids_from_root_ids",
         "allocation_candidate:_get_ancestors_by_one_uuid"),
    ),
    Concern(
        "sharing",
        ("sharing_anchors",),
        ("research_context:anchors_for_sharing_providers",
         "research_context:RequestGroupSearchContext.get_rps_with_shared_capacity"),
    ),
    Concern(
        "summaries",
        ("trees",),
        ("research_context:get_usages_by_provider_trees", "allocation_candidate:_build_provider_summaries",
         "trait:get_traits_by_provider_tree"),
    ),
    Concern(
        "limit paging",
        ("root_page", "root_page_with_room"),
        ("research_context:RequestWideSearchContext.limit_results",),
    ),
)

# Requests on the demo cloud that together take every path above, in Placement
# and in the engine ({name}: the UUID of that provider or aggregate).
CODE_REQUESTS = (
    "resources=VCPU:1&limit=2",
    "resources=VCPU:2,MEMORY_MB:2048,DISK_GB:100",
    "resources=VCPU:1&required=HW_CPU_X86_AVX2,!STORAGE_DISK_SSD&member_of=in:{demo_agg}&root_required=COMPUTE_NODE",
    "resources=VCPU:1&in_tree={cn1}",
    "resources_CPU=VCPU:2,MEMORY_MB:2048&required_CPU=HW_NUMA_ROOT&resources_NET=SRIOV_NET_VF:1"
    "&required_PHYS=CUSTOM_PHYSNET_PUBLIC&same_subtree=_CPU,_NET,_PHYS&group_policy=isolate",
)

_SQL_BREAKS = re.compile(
    r"\s+(?=\b(?:SELECT|FROM|WHERE|GROUP BY|HAVING|ORDER BY|LIMIT|UNION(?: ALL)?|AND|OR|"
    r"(?:LEFT OUTER |LEFT |INNER |CROSS )?JOIN)\b)"
)
_PLACEHOLDER_LISTS = re.compile(r"\((?:\s*(?:\?|%\([^)]*\)s|:\w+|__\[POSTCOMPILE_\w+\])\s*,?)+\)")


def format_sql(statement: str) -> str:
    """One fixed layout for rendered SQL: a line per clause, join and AND/OR
    condition (roughly how the Cypher and the SQL store are written)."""
    flat = " ".join(statement.split())
    return _SQL_BREAKS.sub("\n", flat)


def code_lines(text: str, comment: str) -> int:
    """Lines with code in a query: not blank and not only a comment (``//`` or ``--``)."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith(comment))


def python_code_lines(source: str) -> int:
    """Lines with code in Python source: no blank lines, comments or docstrings."""
    source = inspect.cleandoc("\n" + source) if source.startswith((" ", "\t")) else source
    lines: set[int] = set()
    previous = None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        docstring = token.type == tokenize.STRING and (previous in (None, tokenize.INDENT, tokenize.NEWLINE,
                                                                   tokenize.DEDENT))
        if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER) and not docstring:
            lines.update(range(token.start[0], token.end[0] + 1))
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return len(lines)


def placement_function(name: str) -> Callable:
    """``"research_context:get_sharing_providers"`` -> the function in Placement 16.0.0 (unwrapped)."""
    module, qualified = name.split(":")
    found: Any = importlib.import_module(f"placement.objects.{module}")
    for part in qualified.split("."):
        found = getattr(found, part)
    return inspect.unwrap(found)


def sql_store_queries() -> dict[str, str]:
    """The SQL store's queries by name, as sent to PostgreSQL."""
    from workbench.comparison.sql_store import SQL

    return SQL


class _SQLByFunction:
    """Statements Placement sends, each credited to the innermost function of
    :data:`CONCERNS` on the Python stack when it is sent."""

    def __init__(self, engine):
        self.engine = engine
        self.owner = {placement_function(f).__code__: f for c in CONCERNS for f in c.placement}
        self.statements: dict[str, list[str]] = {}  # function ("" for none of them) -> statements

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code not in self.owner:
            frame = frame.f_back
        self.statements.setdefault(self.owner[frame.f_code] if frame else "", []).append(statement)

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._record)


def distinct_statements(statements: list[str]) -> list[str]:
    """Statements in a fixed layout, each kind once: one query sent per class,
    or with a longer list of ids, is one query."""
    seen: dict[str, str] = {}
    for statement in statements:
        laid_out = format_sql(statement)
        seen.setdefault(_PLACEHOLDER_LISTS.sub("(?)", laid_out), laid_out)
    return list(seen.values())


def code_by_concern(oracle, scenario) -> list[dict]:
    """Per concern: code lines of the Cypher, of the SQL store, of Placement's
    functions (Python) and of the SQL they rendered, with what was counted.

    ``oracle`` is a :class:`PlacementOracle` holding ``scenario`` (the demo
    cloud, for :data:`CODE_REQUESTS`)."""
    from workbench.comparison.parity import resolve_placeholders

    with _SQLByFunction(oracle.engine) as sent:
        for query in CODE_REQUESTS:
            status, body = oracle.allocation_candidates(resolve_placeholders(query, scenario))
            if status != 200:
                raise RuntimeError(f"Placement answered {status} to {query}: {body}")
    sql = sql_store_queries()
    rows = []
    for concern in CONCERNS:
        rendered = distinct_statements([s for f in concern.placement for s in sent.statements.get(f, [])])
        rows.append({
            "concern": concern.name,
            "queries": list(concern.queries),
            "cypher_lines": sum(code_lines(candidates.CYPHER[n], "//") for n in concern.queries),
            "sql_store_lines": sum(code_lines(sql[n], "--") for n in concern.queries),
            "placement_functions": list(concern.placement),
            "placement_python_lines": sum(
                python_code_lines(inspect.getsource(placement_function(f))) for f in concern.placement),
            "placement_sql_statements": len(rendered),
            "placement_sql_lines": sum(len(s.splitlines()) for s in rendered),
            "placement_sql": rendered,
        })
    rows.append({
        "concern": "other statements (transactions, caches)",
        "placement_sql_statements": len(distinct_statements(sent.statements.get("", []))),
    })
    return rows


# -- the hard case ------------------------------------------------------------------------

NUMA_AFFINITY_SQL = """
-- The hard case over Placement's own tables, in one statement: the same rows as
-- lessons.NUMA_AFFINITY_CANDIDATES (disk, cpu, net providers per candidate).
WITH RECURSIVE
-- Each provider with every ancestor (itself included), walked from
-- parent_provider_id as the graph walks PARENT_OF: no stored root used.
lineage (ancestor_id, provider_id) AS (
  SELECT id, id
  FROM resource_providers
  UNION ALL
  SELECT lineage.ancestor_id, child.id
  FROM lineage
  JOIN resource_providers AS child ON child.parent_provider_id = lineage.provider_id
),
-- same_subtree: the VF provider is below the cell (or is it), or above it.
same_subtree (cell_id, nic_id) AS (
  SELECT ancestor_id, provider_id FROM lineage
  UNION
  SELECT provider_id, ancestor_id FROM lineage
),
tree (root_id, provider_id) AS (
  SELECT lineage.ancestor_id, lineage.provider_id
  FROM lineage
  JOIN resource_providers AS root ON root.id = lineage.ancestor_id
  WHERE root.parent_provider_id IS NULL
),
asked (class_name, amount) AS (
  VALUES ('VCPU', :vcpu), ('MEMORY_MB', :memory_mb), ('SRIOV_NET_VF', :vfs), ('DISK_GB', :disk_gb)
),
usage (provider_id, class_id, used) AS (
  SELECT resource_provider_id, resource_class_id, SUM(used)
  FROM allocations
  GROUP BY resource_provider_id, resource_class_id
),
-- The inventories that can give their class's amount: unit rules and room left.
room (provider_id, class_name) AS (
  SELECT inv.resource_provider_id, asked.class_name
  FROM inventories AS inv
  JOIN resource_classes AS rc ON rc.id = inv.resource_class_id
  JOIN asked ON asked.class_name = rc.name
  LEFT JOIN usage ON usage.provider_id = inv.resource_provider_id AND usage.class_id = inv.resource_class_id
  WHERE asked.amount BETWEEN inv.min_unit AND inv.max_unit
    AND asked.amount % inv.step_size = 0
    AND COALESCE(usage.used, 0) + asked.amount <= (inv.total - inv.reserved) * inv.allocation_ratio
)
SELECT host.uuid AS disk, cell.uuid AS cpu, nic.uuid AS net
FROM resource_providers AS cell
JOIN resource_provider_traits AS cell_trait ON cell_trait.resource_provider_id = cell.id
JOIN traits ON traits.id = cell_trait.trait_id AND traits.name = 'HW_NUMA_ROOT'
JOIN room AS cpu ON cpu.provider_id = cell.id AND cpu.class_name = 'VCPU'
JOIN room AS memory ON memory.provider_id = cell.id AND memory.class_name = 'MEMORY_MB'
JOIN same_subtree ON same_subtree.cell_id = cell.id
JOIN room AS vf ON vf.provider_id = same_subtree.nic_id AND vf.class_name = 'SRIOV_NET_VF'
JOIN resource_providers AS nic ON nic.id = vf.provider_id
-- The disk from any provider of the cell's tree.
JOIN tree AS cell_tree ON cell_tree.provider_id = cell.id
JOIN tree AS disk_tree ON disk_tree.root_id = cell_tree.root_id
JOIN room AS disk ON disk.provider_id = disk_tree.provider_id AND disk.class_name = 'DISK_GB'
JOIN resource_providers AS host ON host.id = disk.provider_id
WHERE :isolate = 0 OR nic.id <> cell.id
"""

HARD_CASE_AMOUNTS = {"vcpu": 2, "memory_mb": 2048, "vfs": 1, "disk_gb": 20}


def hard_case_query(group_policy: str = "isolate", **amounts: int) -> str:
    """The hard case as Placement's query string."""
    return lessons.NUMA_AFFINITY_CANDIDATES_REQUEST.format(group_policy=group_policy,
                                                           **{**HARD_CASE_AMOUNTS, **amounts})


def hard_case_by_pattern(graph, group_policy: str = "isolate", **amounts: int) -> list[dict]:
    """Allocation requests from the one Cypher pattern."""
    asked = {**HARD_CASE_AMOUNTS, **amounts}
    rows = graph.read(lessons.NUMA_AFFINITY_CANDIDATES, isolate=group_policy == "isolate", **asked)
    return lessons.numa_affinity_allocation_requests(rows, **asked)


def hard_case_by_sql(engine, group_policy: str = "isolate", **amounts: int) -> list[dict]:
    """Allocation requests from the recursive-CTE SQL, on Placement's database (``engine``)."""
    from sqlalchemy import text

    asked = {**HARD_CASE_AMOUNTS, **amounts}
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(
            text(NUMA_AFFINITY_SQL), {"isolate": int(group_policy == "isolate"), **asked})]
    return lessons.numa_affinity_allocation_requests(rows, **asked)


def hard_case_by_combiner(graph, group_policy: str = "isolate", **amounts: int) -> list[dict]:
    """Allocation requests from the engine: its queries and its Python combining step."""
    return candidates.find(graph, hard_case_query(group_policy, **amounts))["allocation_requests"]


def candidate_set(allocation_requests: list[dict]) -> list[str]:
    """Allocation requests order-free, as sorted canonical JSON (a multiset)."""
    from workbench.comparison.compare import normalise_candidates

    return [canonical_json(r) for r in normalise_candidates({"allocation_requests": allocation_requests})[
        "allocation_requests"]]


# -- one search, measured per named query --------------------------------------------------


class MeteredReader:
    """A reader (``.read(text, **parameters) -> rows``) that also records the size
    of each answer: the rows as decoded, measured as compact JSON, the same rule
    for every store."""

    def __init__(self, reader):
        self.reader = reader
        self.sizes: list[int] = []

    def read(self, text: str, **parameters) -> list[dict]:
        rows = self.reader.read(text, **parameters)
        self.sizes.append(len(json.dumps(rows, separators=(",", ":"), default=str)))
        return rows


def measure_search(run: Callable[[Callable[[Any], Any]], Any], search_class, query: str) -> dict:
    """One search through ``run(work)`` (which calls ``work(reader)`` inside the store's
    transaction), timed: per named query time, rows and bytes; database time (the
    named queries, decoding included) against the Python rest."""
    request = parse(query)
    trace: list[candidates.QueryTrace] = []
    meters: list[MeteredReader] = []

    def work(reader):
        trace.clear()
        meters.clear()
        metered = MeteredReader(reader)
        meters.append(metered)
        return search_class(metered, request, trace).run()

    started = time.perf_counter()
    with candidates._cycle_collector_paused():  # as candidates.find and find_sql do
        body = run(work)
    search_ms = (time.perf_counter() - started) * 1000
    queries: dict[str, dict] = {}
    for step, size in zip(trace, meters[0].sizes):
        entry = queries.setdefault(step.name, {"calls": 0, "ms": 0.0, "rows": 0, "bytes": 0})
        entry["calls"] += 1
        entry["ms"] += step.milliseconds
        entry["rows"] += step.rows
        entry["bytes"] += size
    db_ms = sum(q["ms"] for q in queries.values())
    return {
        "body": body,
        "search_ms": search_ms,
        "db_ms": db_ms,
        "python_ms": search_ms - db_ms,
        "bytes": sum(q["bytes"] for q in queries.values()),
        "queries": queries,
    }


def graph_store(graph) -> tuple[Callable, type]:
    """(run, search class) for :func:`measure_search` on the graph: one read transaction."""
    return graph.reading, candidates.CandidateSearch


def sql_store(engine, root_column: bool = False) -> tuple[Callable, type]:
    """(run, search class) for :func:`measure_search` on Placement's database, in
    one read-only REPEATABLE READ transaction, as ``sql_store.find_sql`` runs it;
    ``root_column``: roots read from Placement's derived root_provider_id."""
    from workbench.comparison.sql_store import SqlCandidateSearch, queries_for, reading

    class Search(SqlCandidateSearch):
        queries = queries_for(engine, root_column)

    def run(work):
        with reading(engine) as reader:
            return work(reader)

    return run, Search
