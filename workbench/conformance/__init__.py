"""Placement's own functional suite (gabbi), run unmodified against the graph.

  fixtures    the 13 gabbi fixture classes under upstream's names, on the graph
  topologies  the clouds of the 8 topological fixtures
  run         ``workbench conformance``: build the tests from the installed
              Placement's gabbits, run them file by file, report
"""
