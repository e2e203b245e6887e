"""Placement semantics on the graph.

  errors       Placement-style errors (HTTP status, error code, detail)
  loader       write a validated scenario into Neo4j in one transaction
  request      parse Placement's allocation-candidates query string
  candidates   find allocation candidates: Cypher selects, Python combines
  providers    read provider trees, inventories and usage
"""
