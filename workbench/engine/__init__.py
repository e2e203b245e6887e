"""Placement semantics on the graph.

  errors       Placement-style errors (HTTP status, error code, detail)
  loader       write a validated scenario into Neo4j in one transaction
  request      parse Placement's allocation-candidates query string
  candidates   find allocation candidates: Cypher selects, Python combines
  providers    resource providers: create, rename, re-parent, delete; traits and
               aggregates; trees for people
  inventories  inventories with Placement's rules
  allocations  claims, releases, whole-provider claims and usages
  consumers    consumer records and generations, inside an allocation write
  reshaper     move inventories and allocations across a tree in one transaction
  quotas       limits per project / user / consumer type, checked inside claims
"""
