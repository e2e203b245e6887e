"""OpenStack Placement on Neo4j: a teaching and demo workbench.

Layout:
  server      the local Neo4j Community server (built from Maven Central jars)
  db          the connection to Neo4j (local or ``NEO4J_URI``) and the graph schema
  scenario    the YAML scenario format: parse and validate a described cloud
  engine/     Placement semantics on the graph: loading, providers, requests,
              allocation candidates, claims, usages
  oracle      the real OpenStack Placement, in-process on SQLite, for comparison
  cli         the ``workbench`` command, a thin layer over the above
"""

__version__ = "0.1.0"
