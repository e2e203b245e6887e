"""Drawing provider trees: interactive (pyvis, offline), static (SVG) and as text.

    from workbench.viz import ProviderTree, tree_html, tree_svg, write_tree
    ProviderTree(graph, candidate=body["allocation_requests"][0])   # in a notebook
    write_tree("trees.html", graph, "resources=VCPU:1", pick=0)     # a standalone page

Modules, one job each:
  data         what a drawing needs, read from Neo4j (provider trees, sharing links, consumers)
  model        the drawing as data: nodes, edges, highlighting, the summary view of large graphs
  layout       box positions (tidy tree, roots on top), shared by both drawings
  interactive  the pyvis page, self-contained and deterministic
  offline      removing and detecting network references in a page
  static       the SVG fallback
  text         the text summary
  display      ProviderTree (the notebook representation) and write_tree
  builder      the ipywidgets request builder (imported separately: ``workbench.viz.builder``)
"""

from workbench.viz.display import ProviderTree, write_tree
from workbench.viz.interactive import drawing_html, tree_html
from workbench.viz.model import DEFAULT_THRESHOLD, Drawing, build_drawing, drawing_for, pick_candidate
from workbench.viz.offline import remote_references
from workbench.viz.static import drawing_svg, tree_svg
from workbench.viz.text import drawing_text

__all__ = [
    "DEFAULT_THRESHOLD",
    "Drawing",
    "ProviderTree",
    "build_drawing",
    "drawing_for",
    "drawing_html",
    "drawing_svg",
    "drawing_text",
    "pick_candidate",
    "remote_references",
    "tree_html",
    "tree_svg",
    "write_tree",
]
