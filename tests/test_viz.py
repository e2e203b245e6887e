"""The provider-tree drawings (workbench.viz) and the request builder, on a real Neo4j.

Most tests read data/fixtures/numa_network.yaml (Placement's NUMANetworkFixture):

    ss1 (sharing: MISC_SHARES_VIA_AGGREGATE, aggA, DISK_GB 2000)
    cn1 (aggA) ── numa0 (VCPU 4, 2 used) ── fpga0 (FPGA 1), pgpu0 (VGPU 8)
               ├─ numa1 (VCPU 4)        ── fpga1_0 (FPGA 1), fpga1_1 (FPGA 1)
               ├─ sriov_agent ── esn1, esn2      ovs_agent ── br_int
    cn2 (aggA, VCPU 8, 3 used) ── nic1, nic2, nic3 ── seven PFs (CUSTOM_VF)

For ``resources_CPU=VCPU:1&resources_FPGA=FPGA:1&group_policy=none&same_subtree=_CPU,_FPGA``
the VCPU and the FPGA must come from one subtree: a NUMA node and an FPGA
below it. cn2 has VCPU but no FPGA, so exactly three candidates exist:
(numa0, fpga0), (numa1, fpga1_0) and (numa1, fpga1_1).
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from workbench.engine import allocations, loader
from workbench.engine.candidates import find
from workbench.engine.errors import BadRequest, Conflict
from workbench.scenario import load_file, parse
from workbench.viz import ProviderTree, drawing_for, tree_html, tree_svg, write_tree
from workbench.viz import style
from workbench.viz.builder import SHORT_TIMEOUTS, RequestBuilder
from workbench.viz.interactive import MIN_SCALE
from workbench.viz.model import DEFAULT_THRESHOLD

ROOT = Path(__file__).resolve().parent.parent
NUMA = "data/fixtures/numa_network.yaml"
QUERY = "resources_CPU=VCPU:1&resources_FPGA=FPGA:1&group_policy=none&same_subtree=_CPU,_FPGA"
SVG_NS = "{http://www.w3.org/2000/svg}"


# -- helpers ---------------------------------------------------------------------------


def vis_nodes(page: str) -> list[dict]:
    """The node list pyvis wrote into the page (``nodes = new vis.DataSet([...])``)."""
    match = re.search(r"nodes = new vis\.DataSet\((\[.*?\])\);", page, re.DOTALL)
    assert match, "no vis node list in the page"
    return json.loads(match.group(1))


def vis_edges(page: str) -> list[dict]:
    match = re.search(r"edges = new vis\.DataSet\((\[.*?\])\);", page, re.DOTALL)
    assert match, "no vis edge list in the page"
    return json.loads(match.group(1))


class _Tags(HTMLParser):
    """Every tag with its attributes, and the text of each <script> and <style>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.styles: list[str] = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self._open = tag

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open == "style":
            self.styles.append(data)


def network_references(page: str) -> list[str]:
    """Everything in ``page`` a browser would load from the network.

    Stricter than the library's own check: *any* attribute holding an absolute
    or protocol-relative URL, any external <script src>/<link>, any CSS url()
    that is not a data: URI or @import; and every "http(s)://" in the page must
    sit inside an inline <script> (licence comments and the SVG namespace string
    in vis-network), never in markup, and never as a src/href/fetch/import
    target in the script itself.
    """
    found = []
    parser = _Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        for name, value in attrs:
            if name == "xmlns" or name.startswith("xmlns:"):
                continue  # a namespace name (http://www.w3.org/2000/svg) is an identifier, never fetched
            if value and re.match(r"\s*(?:[a-z][a-z0-9+.-]*:)?//", value, re.IGNORECASE):
                found.append(f"<{tag} {name}={value!r}>")
        if tag == "link":
            found.append(f"<link {attrs}>")
        if tag == "script" and any(name == "src" for name, _ in attrs):
            found.append(f"<script {attrs}>")
    for css in parser.styles:
        for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
            if not target.startswith("data:"):
                found.append(f"css url({target[:60]})")
        if "@import" in css:
            found.append("css @import")
    # Namespace names are identifiers, not addresses: blank them out (same length) first.
    page = re.sub(r'\sxmlns(?::\w+)?="[^"]*"', lambda m: " " * len(m.group(0)), page)
    scripts = [m.span(1) for m in re.finditer(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL | re.IGNORECASE)]
    for m in re.finditer(r"https?://", page):
        if not any(start <= m.start() < end for start, end in scripts):
            found.append(f"outside a script: {page[max(m.start() - 40, 0):m.start() + 60]!r}")
    for start, end in scripts:
        code = page[start:end]
        for m in re.finditer(r"(?:\b(?:src|href)\s*[=:]|\b(?:fetch|import)\s*\()\s*['\"`]\s*(?:https?:)?//", code):
            found.append(f"script loads: {code[m.start():m.start() + 80]!r}")
    return found


def names_of(scenario) -> set[str]:
    return {p.name for p in scenario.providers}


def candidate_using(body: dict, scenario, *names: str) -> tuple[int, dict]:
    uuids = {scenario.provider(n).uuid for n in names}
    for i, request in enumerate(body["allocation_requests"]):
        if set(request["allocations"]) == uuids:
            return i, request
    raise AssertionError(f"no candidate uses exactly {names}")


# -- the interactive page ----------------------------------------------------------------


def test_page_loads_nothing_from_the_network(scenario_graph):
    graph, _ = scenario_graph(NUMA)
    page = tree_html(graph, QUERY, consumers=True)
    assert page.lstrip().startswith("<html>")
    assert network_references(page) == []
    # pyvis's template does reference a CDN: the check would have caught it.
    from pyvis.network import Network

    raw = Network(cdn_resources="in_line").generate_html()
    assert any("cdn.jsdelivr.net" in ref for ref in network_references(raw))


def test_every_provider_is_drawn_once_with_its_usage(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    page = tree_html(graph)
    nodes = vis_nodes(page)
    assert [n["id"] for n in nodes].count(scenario.provider("ss1").uuid) == 1
    assert {n["id"] for n in nodes} == {p.uuid for p in scenario.providers}
    by_id = {n["id"]: n for n in nodes}
    for provider in scenario.providers:
        node = by_id[provider.uuid]
        assert provider.name in node["label"]
        assert provider.name in page
        assert node["role"] == "plain"
    numa0 = by_id[scenario.provider("numa0").uuid]
    assert re.search("VCPU\u00a0+2/4\u00a0", numa0["label"]) and "MEMORY_MB\u00a00/2048" in numa0["label"]
    assert "HW_NUMA_ROOT" in numa0["title"] and "uuid " + numa0["id"] in numa0["title"]
    # Roots on top: every child is drawn below its parent.
    for provider in scenario.providers:
        if provider.parent_uuid:
            assert by_id[provider.uuid]["y"] > by_id[provider.parent_uuid]["y"]


def test_parent_links_are_solid_and_sharing_links_dashed(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    edges = vis_edges(tree_html(graph))
    uuid = {p.name: p.uuid for p in scenario.providers}
    parents = [(e["from"], e["to"]) for e in edges if e["kind"] == "parent"]
    assert sorted(parents) == sorted((p.parent_uuid, p.uuid) for p in scenario.providers if p.parent_uuid)
    assert all(not e.get("dashes") for e in edges if e["kind"] == "parent")
    sharing = [e for e in edges if e["kind"] == "shares"]
    assert sorted((e["from"], e["to"]) for e in sharing) == sorted([(uuid["ss1"], uuid["cn1"]), (uuid["ss1"], uuid["cn2"])])
    assert all(e["dashes"] and e["label"] == "via aggA" for e in sharing)


def test_three_candidates_as_reasoned_from_the_fixture(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    body = find(graph, QUERY)
    names = {p.uuid: p.name for p in scenario.providers}
    used = sorted(sorted(names[rp] for rp in r["allocations"]) for r in body["allocation_requests"])
    assert used == [["fpga0", "numa0"], ["fpga1_0", "numa1"], ["fpga1_1", "numa1"]]


def test_candidate_is_highlighted_and_the_rest_fades(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    body = find(graph, QUERY)
    pick, request = candidate_using(body, scenario, "numa0", "fpga0")
    page = tree_html(graph, request)
    assert page == tree_html(graph, QUERY, pick=pick)  # a query string and a pick draw the same
    nodes = {n["id"]: n for n in vis_nodes(page)}
    numa0, fpga0 = scenario.provider("numa0").uuid, scenario.provider("fpga0").uuid
    assert {i for i, n in nodes.items() if n["role"] == "used"} == {numa0, fpga0}
    assert all(n["role"] == "faded" for i, n in nodes.items() if i not in (numa0, fpga0))
    assert nodes[numa0]["taken"] == {"VCPU": 1} and nodes[fpga0]["taken"] == {"FPGA": 1}
    assert "+1" in nodes[numa0]["label"] and "+1" in nodes[fpga0]["label"]
    assert "the candidate takes 1" in nodes[numa0]["title"]
    # Used providers stand out (thick orange border); faded ones are grey.
    assert nodes[numa0]["borderWidth"] > nodes[scenario.provider("numa1").uuid]["borderWidth"]
    assert nodes[numa0]["color"]["border"] != nodes[scenario.provider("numa1").uuid]["color"]["border"]
    assert "candidate: fpga0 takes FPGA 1; numa0 takes VCPU 1" in page
    edge = next(e for e in vis_edges(page) if e["to"] == fpga0)
    assert edge["width"] > next(e for e in vis_edges(page) if e["to"] == scenario.provider("fpga1_0").uuid)["width"]


def test_candidate_errors(scenario_graph):
    graph, _ = scenario_graph(NUMA)
    with pytest.raises(BadRequest, match="out of range: there are 3 candidates"):
        tree_html(graph, QUERY, pick=3)
    with pytest.raises(Conflict, match="No allocation candidates"):
        tree_html(graph, "resources=VCPU:1000")
    with pytest.raises(ValueError, match="no provider 'nope'"):
        tree_html(graph, roots=["nope"])


# -- the static fallback and the notebook representation ------------------------------------


def test_svg_fallback_shows_the_same_tree_and_highlight(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    body = find(graph, QUERY)
    _, request = candidate_using(body, scenario, "numa1", "fpga1_1")
    svg = tree_svg(graph, request)
    root = ET.fromstring(svg)  # well-formed XML
    groups = {g.get("data-name"): g for g in root.iter(f"{SVG_NS}g") if g.get("data-name")}
    assert set(groups) == names_of(scenario)
    assert {name for name, g in groups.items() if g.get("data-role") == "used"} == {"numa1", "fpga1_1"}
    assert all(g.get("data-role") == "faded" for name, g in groups.items() if name not in ("numa1", "fpga1_1"))
    texts = lambda g: [t.text for t in g.iter(f"{SVG_NS}text")]  # noqa: E731
    assert "+1" in texts(groups["numa1"]) and "+1" in texts(groups["fpga1_1"])
    assert "+1" not in texts(groups["fpga1_0"])
    assert "VCPU: 0 used of 4; the candidate takes 1" in groups["numa1"].find(f"{SVG_NS}title").text
    assert network_references(svg) == []


def test_text_summary_marks_the_candidate(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    tree = ProviderTree(graph, QUERY, pick=candidate_using(find(graph, QUERY), scenario, "numa0", "fpga0")[0])
    marked = [line.split()[1] for line in tree.text.splitlines() if line.startswith("* ")]
    assert marked == ["numa0", "fpga0"]
    assert "shares its inventory with 2 trees (cn1, cn2) via aggA" in tree.text
    assert repr(tree) == tree.text


def test_notebook_bundle(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    tree = ProviderTree(graph, QUERY)
    bundle = tree._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/svg+xml"}
    assert bundle["text/plain"] == tree.text
    assert bundle["image/svg+xml"] == tree.svg
    shown = bundle["text/html"]
    # Without JavaScript: the static SVG, as an image (sanitizers drop inline <svg>).
    # With it: the interactive page in a sandboxed iframe.
    image = re.search(r'<img alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', shown)
    assert base64.b64decode(image.group(1)).decode() == tree.svg
    assert image.start() < shown.index("<script") and "<svg" not in shown
    assert 'frame.setAttribute("sandbox", "allow-scripts")' in shown and "frame.srcdoc = " in shown
    page = json.loads(re.search(r"frame\.srcdoc = (\".*?\");\n", shown, re.DOTALL).group(1).replace("<\\/", "</"))
    assert page == tree.html
    assert "</script" not in shown[shown.index("frame.srcdoc"):shown.rindex("</script>")]
    assert network_references(shown) == []


def test_output_is_deterministic(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    first = ProviderTree(graph, QUERY, consumers=True)._repr_mimebundle_()
    second = ProviderTree(graph, QUERY, consumers=True)._repr_mimebundle_()
    assert first == second
    assert tree_html(graph) == tree_html(graph) and tree_svg(graph) == tree_svg(graph)
    # No random identifiers: every UUID in the drawn data is a provider or consumer of the scenario.
    known = {p.uuid for p in scenario.providers} | {c.uuid for c in scenario.consumers}
    page = ProviderTree(graph, QUERY, consumers=True).html
    drawn = json.dumps([vis_nodes(page), vis_edges(page)]) + first["image/svg+xml"] + first["text/plain"]
    uuids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", drawn))
    assert uuids and uuids <= known


def test_roots_and_consumers(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    nodes = vis_nodes(tree_html(graph, roots=["cn2"]))
    names = {p.uuid: p.name for p in scenario.providers}
    cn2_tree = {"cn2", "nic1", "nic2", "nic3", "pf1_1", "pf1_2", "pf2_1", "pf2_2", "pf2_3", "pf2_4", "pf3_1"}
    assert {names[n["id"]] for n in nodes} == cn2_tree | {"ss1"}  # the sharing provider comes along
    page = tree_html(graph, consumers=True)
    consumers = [n for n in vis_nodes(page) if n["kind"] == "consumer"]
    assert sorted(n["id"] for n in consumers) == sorted(c.uuid for c in scenario.consumers)
    held = sorted((names[e["from"]], e["label"]) for e in vis_edges(page) if e["kind"] == "consumes")
    assert held == [("cn2", "VCPU 3"), ("numa0", "VCPU 2")]


def test_write_tree(scenario_graph, tmp_path):
    graph, scenario = scenario_graph(NUMA)
    path = write_tree(tmp_path / "tree.html", graph, QUERY, pick=1)
    page = path.read_text(encoding="utf-8")
    assert network_references(page) == []
    assert sum(n["role"] == "used" for n in vis_nodes(page)) == 2
    assert all(p.name in page for p in scenario.providers)


# -- large graphs ---------------------------------------------------------------------------


def big_cloud(hosts: int):
    """A sharing pool and ``hosts`` compute trees of five providers each."""
    providers = [
        {"name": "pool", "traits": ["MISC_SHARES_VIA_AGGREGATE"], "aggregates": ["agg"],
         "inventories": {"DISK_GB": 10000}}
    ]
    for h in range(hosts):
        providers.append({
            "name": f"host{h:03d}", "aggregates": ["agg"],
            "children": [
                {"name": f"host{h:03d}_numa{n}", "inventories": {"VCPU": 8, "MEMORY_MB": 4096},
                 "children": [{"name": f"host{h:03d}_numa{n}_pf", "inventories": {"SRIOV_NET_VF": 4}}]}
                for n in range(2)
            ],
        })
    return parse({"name": "big", "providers": providers}, source="<big>")


def test_summary_view_above_the_threshold(graph):
    scenario = big_cloud(40)  # 201 providers
    loader.load(graph, scenario)
    assert len(scenario.providers) > DEFAULT_THRESHOLD
    body = find(graph, "resources=VCPU:2,DISK_GB:10&limit=1")
    request = body["allocation_requests"][0]
    page = tree_html(graph, request)
    nodes = vis_nodes(page)
    assert len(nodes) == 41  # one per tree
    assert "Summary view: 201 providers in 41 trees" in page
    used = [n for n in nodes if n["role"] == "used"]
    host = next(n for n in used if n["id"] != scenario.provider("pool").uuid)
    assert host["taken"] == {"VCPU": 2} and "+\u00a04\u00a0providers\u00a0below" in host["label"]
    assert re.search("VCPU\u00a0+0/16\u00a0", host["label"])  # added up over the tree
    # A sharing provider serving 40 trees: only the link the candidate uses is drawn.
    assert [e["role"] for e in vis_edges(page) if e["kind"] == "shares"] == ["used"]
    svg = tree_svg(graph, request)
    assert "Summary view: 201 providers in 41 trees" in svg
    assert network_references(page) == [] and network_references(svg) == []
    # Below the threshold everything is drawn; far above it, the trees are folded too.
    assert len(vis_nodes(tree_html(graph, threshold=500))) == 201
    small = drawing_for(graph, threshold=20)
    assert len(small.nodes) == 20 and small.nodes[-1].name == "22 more trees"
    assert "Only 19 of 41 trees are drawn" in ProviderTree(graph, threshold=20).text


# -- the request builder ----------------------------------------------------------------------


def test_builder_follows_its_inputs(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    assert builder.query == "" and builder.count == 0 and "at least one resource class" in builder.error
    builder.group("").amounts["VCPU"].value = 1
    assert builder.query == "resources=VCPU:1" and builder.count == 3  # numa0, numa1, cn2
    assert builder.query_box.value == "resources=VCPU:1" and "<b>3</b>" in builder.count_view.value
    builder.group("").required.value = "CUSTOM_FOO"
    assert builder.query == "resources=VCPU:1&required=CUSTOM_FOO" and builder.count == 2  # numa1, cn2
    assert builder.query_box.value == builder.query  # the box follows the controls
    builder.group("").amounts["VCPU"].value = 0
    builder.group("").required.value = ""
    cpu, fpga = builder.add_group("_CPU"), builder.add_group("_FPGA")
    cpu.amounts["VCPU"].value = 1
    fpga.amounts["FPGA"].value = 1
    assert "group_policy" in builder.error and builder.count == 0  # shown inline, not raised
    builder.group_policy.value = "none"
    builder.same_subtree.value = "_CPU,_FPGA"
    assert builder.query == QUERY and builder.error is None and builder.count == 3
    assert list(builder.frame.index) == [0, 1, 2] and len(builder.pick.options) == 3
    builder.pick.value = candidate_using(builder.body, scenario, "numa0", "fpga0")[0]
    assert "fpga0" in builder.tree_view.value and 'data-role="used"' in builder.tree_view.value
    builder.view.value = "interactive"
    assert builder.tree_view.value.startswith('<iframe sandbox="allow-scripts" srcdoc="')
    aggregate = scenario.provider("cn1").aggregates[0]
    builder.group("").member_of.value = aggregate  # a group without resources: refused, inline
    assert builder.query.startswith(f"member_of={aggregate}&") and "Resourceless" in builder.error
    builder.group("").member_of.value = ""
    cpu.member_of.value = aggregate
    assert f"member_of_CPU={aggregate}" in builder.query and builder.error is None
    assert builder.count == len(find(graph, builder.query)["allocation_requests"])
    cpu.member_of.value = ""
    # What a saved notebook shows without the widget state.
    bundle = builder._repr_mimebundle_()
    assert {"text/plain", "text/html", "application/vnd.jupyter.widget-view+json"} <= set(bundle)
    assert bundle["text/plain"] == builder.text() and builder.query in bundle["text/plain"]
    assert "3 allocation candidates" in bundle["text/plain"]
    assert "data:image/svg+xml;base64," in bundle["text/html"] and network_references(bundle["text/html"]) == []
    assert builder._repr_mimebundle_()["text/html"] == bundle["text/html"]


def test_builder_claims_the_chosen_candidate(graph):
    scenario = load_file(ROOT / NUMA)
    loader.load(graph, scenario)
    builder = RequestBuilder(graph, project="proj", user="alice", interactive=False)
    cpu, fpga = builder.add_group("_CPU"), builder.add_group("_FPGA")
    cpu.amounts["VCPU"].value = 1
    fpga.amounts["FPGA"].value = 1
    builder.group_policy.value = "none"
    builder.same_subtree.value = "_CPU,_FPGA"
    pick, request = candidate_using(builder.body, scenario, "numa0", "fpga0")
    builder.pick.value = pick
    builder.project.value = ""
    assert builder.claim() is None and "needs a project" in builder.status.value
    builder.project.value = "proj"
    builder.claim_button.click()
    consumer = builder.last_consumer
    assert consumer and consumer in builder.status.value
    held = allocations.get_allocations(graph, consumer)
    assert held["project_id"] == "proj" and held["user_id"] == "alice"
    assert {rp: v["resources"] for rp, v in held["allocations"].items()} == {
        rp: v["resources"] for rp, v in request["allocations"].items()
    }
    # fpga0 is now full: two candidates are left, and the drawing shows the usage.
    assert builder.count == 2
    assert "FPGA 1/1" in builder.text() or "fpga0" not in builder.text()
    # A claim that no longer fits is refused inline (someone took numa1's FPGAs meanwhile).
    builder.pick.value = 0
    for rp in builder.candidate["allocations"]:
        if builder.candidate["allocations"][rp]["resources"].get("FPGA"):
            allocations.set_allocations(graph, "7b7a4d0e-9a3c-4a55-9d0c-4f5f1e0a2b3c", {rp: {"FPGA": 1}}, "p", "u")
    before = builder.last_consumer
    assert builder.claim() is None
    assert "claim refused (409" in builder.status.value and "exceed the capacity" in builder.status.value
    assert builder.last_consumer == before


def test_builder_takes_a_pasted_query_string(scenario_graph):
    """Any Placement query string, verbatim: answered as given, the controls filled from it."""
    graph, scenario = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    cn1 = scenario.provider("cn1").uuid
    pasted = f"{QUERY}&required_CPU=!CUSTOM_FOO&in_tree_CPU={cn1}"
    builder.query_box.value = pasted  # what Enter in the box does
    assert builder.error is None
    assert builder.count == len(find(graph, pasted)["allocation_requests"])
    assert [g.suffix.value for g in builder.groups] == ["", "_CPU", "_FPGA"]
    assert builder.group("_CPU").amounts["VCPU"].value == 1 and builder.group("_FPGA").amounts["FPGA"].value == 1
    assert builder.group("_CPU").forbidden.value == "CUSTOM_FOO"
    assert builder.group_policy.value == "none" and builder.same_subtree.value == "_CPU,_FPGA"
    # in_tree has no control: it is kept, said so, and stays in the query when a control changes.
    assert builder.extra == [("in_tree_CPU", cn1)] and "in_tree_CPU" in builder.extra_view.value
    builder.group("_CPU").forbidden.value = ""
    assert builder.query_box.value.endswith(f"&in_tree_CPU={cn1}") and "required_CPU" not in builder.query_box.value
    assert builder.count == len(find(graph, builder.query_box.value)["allocation_requests"])
    # Pasting a shorter query drops the granular groups it no longer names.
    builder.ask("resources=VCPU:1")
    assert [g.suffix.value for g in builder.groups] == [""] and builder.count == 3 and builder.extra == []


def test_builder_reports_unknown_names_inline(scenario_graph):
    graph, _ = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    builder.ask("resources=VCPU:1,CUSTOM_NOPE:1")
    assert "unknown resource class CUSTOM_NOPE:1" in builder.group("").problems.value
    assert "CUSTOM_NOPE" in builder.error and builder.count == 0  # Placement's 400, shown, not raised
    builder.ask("resources=VCPU:1")
    builder.group("").required.value = "CUSTOM_FOO, CUSTOM_NOPE"  # Enter in the trait field
    assert "required: unknown trait CUSTOM_NOPE" in builder.group("").problems.value
    assert "CUSTOM_NOPE" in builder.error and builder.count == 0
    builder.group("").required.value = "CUSTOM_FOO"
    assert builder.group("").problems.value == "" and builder.error is None and builder.count == 2


def test_builder_shows_a_neo4j_failure_at_once(scenario_graph):
    """A Neo4j that does not answer (here: nothing listens on the port) is reported in the widget
    within seconds, and the previous answer is cleared rather than left beside the new input."""
    import time

    import neo4j

    from workbench.graphdb.db import Graph
    from workbench.graphdb.server import free_port

    graph, _ = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    builder.ask("resources=VCPU:1")
    assert builder.count == 3 and len(builder.frame) == 3
    uri = f"bolt://127.0.0.1:{free_port()}"
    builder.graph = Graph(neo4j.GraphDatabase.driver(uri, auth=("neo4j", "x"), **SHORT_TIMEOUTS), uri, "neo4j")
    try:
        started = time.monotonic()
        builder.ask("resources=VCPU:2")
        took = time.monotonic() - started
    finally:
        builder.graph.close()
    assert took < 6, f"{took:.1f} s before the failure was shown"
    assert builder.error.startswith("Neo4j did not answer") and "Neo4j did not answer" in builder.count_view.value
    assert builder.count == 0 and len(builder.frame) == 0 and builder.table_view.value == ""
    assert builder.tree_view.value == ""  # no drawing of the old state either
    assert builder.pick.options == (("(no candidates)", -1),)


# -- readable on a projector ------------------------------------------------------------------


def test_contrast_ratio_follows_wcag():
    # WCAG 2's reference points: black on white is 21:1, #777 on white about 4.48:1.
    assert style.contrast("#000000", "#ffffff") == pytest.approx(21)
    assert style.contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert style.contrast("#ffffff", "#777777") == style.contrast("#777777", "#ffffff")


def test_colours_are_readable_on_a_projector():
    white = "#ffffff"
    # The lines that carry the lesson: AA for text (4.5:1) against the page.
    assert style.contrast(style.USED_EDGE, white) >= 4.5
    assert style.contrast(style.USED_BORDER, white) >= 4.5
    assert style.contrast(style.SHARING_EDGE, white) >= 4.5
    # The faded context: readable (3:1, AA for large text and for graphics) ...
    assert style.contrast(style.FADED_TEXT, style.FADED_FILL) >= 3
    assert style.contrast(style.FADED_EDGE, white) >= 3
    assert style.contrast(style.FADED_BORDER, white) >= 3
    # ... and clearly behind what the candidate uses (plain text on its fill).
    assert style.contrast(style.TEXT, style.USED_FILL) >= 2.5 * style.contrast(style.FADED_TEXT, style.FADED_FILL)
    # The first view never draws labels below 12 px.
    assert style.FONT_SIZE * MIN_SCALE >= 12


def test_what_a_candidate_uses_comes_first(graph):
    """A sharing pool and the tree it serves for the candidate are drawn first and side by side,
    so that the first view (which starts at the left) shows the sharing link whole."""
    loader.load(graph, load_file(ROOT / "data/scenarios/demo.yaml"))
    names = {p["uuid"]: p["name"] for p in graph.read("MATCH (p:Provider) RETURN p.uuid AS uuid, p.name AS name")}
    body = find(graph, "resources=VCPU:2,MEMORY_MB:2048,DISK_GB:100")
    from_pool = next(
        r for r in body["allocation_requests"] if "shared_storage" in {names[rp] for rp in r["allocations"]}
    )
    used = {names[rp] for rp in from_pool["allocations"]}
    drawing = drawing_for(graph, from_pool, roots=["cn1", "cn2", "shared_storage"])
    roots = [n.name for n in drawing.nodes if n.parent is None and n.kind == "provider"]
    host = next(name.split("_")[0] for name in used if name != "shared_storage")  # cn1 or cn2
    assert roots[:2] == ["shared_storage", host]
    plain = drawing_for(graph, None, roots=["cn1", "cn2", "shared_storage"])
    assert [n.name for n in plain.nodes if n.parent is None] == ["shared_storage", "cn1", "cn2"]


def test_page_frames_every_tree(scenario_graph):
    """The page is given each tree as one block (ids and bounds) to flow into rows, and starts
    with the wheel scrolling the page rather than zooming."""
    graph, scenario = scenario_graph(NUMA)
    page = tree_html(graph, QUERY, pick=0)
    trees = json.loads(re.search(r"var trees = (\[.*?\]), focusIds", page, re.DOTALL).group(1))
    ids = [i for t in trees for i in t["ids"]]
    assert sorted(ids) == sorted(p.uuid for p in scenario.providers) and len(ids) == len(set(ids))
    assert len(trees) == len([p for p in scenario.providers if p.parent_uuid is None])
    assert all(t["left"] < t["right"] and t["top"] < t["bottom"] for t in trees)
    assert '"zoomView": false' in page


# -- why not: the drawing and the builder mark and explain the providers left out --------------

# MEMORY_MB 300 (see the fixture): numa0 has min_unit 512 and step_size 256, cn2 min_unit 1024,
# numa1 min_unit 256 and step_size 1; so numa1 is the only candidate.
MEMORY_300 = "resources=MEMORY_MB:300"


def test_drawing_marks_each_excluded_provider_with_its_first_reason(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    uuid = lambda name: scenario.provider(name).uuid  # noqa: E731
    nodes = {n["id"]: n for n in vis_nodes(tree_html(graph, why_not=MEMORY_300))}
    assert nodes[uuid("numa1")]["role"] == "plain" and "✗" not in nodes[uuid("numa1")]["label"]
    assert nodes[uuid("numa0")]["role"] == "faded"
    # min_unit is checked before step_size: the first reason is the min_unit one.
    assert "why not: MEMORY_MB: 300 asked is below min_unit 512" in nodes[uuid("numa0")]["title"]
    assert "✗" in nodes[uuid("numa0")]["label"] and "min_unit" in nodes[uuid("cn2")]["title"]
    assert "has no MEMORY_MB inventory" in nodes[uuid("fpga0")]["title"]
    svg = ET.fromstring(tree_svg(graph, why_not=MEMORY_300))
    groups = {g.get("data-name"): g for g in svg.iter(f"{SVG_NS}g") if g.get("data-name")}
    texts = [t.text for t in groups["numa0"].iter(f"{SVG_NS}text")]
    assert any(t.startswith("✗ MEMORY_MB: 300") for t in texts)
    assert not any(t.startswith("✗") for t in (t.text for t in groups["numa1"].iter(f"{SVG_NS}text")))
    text = ProviderTree(graph, why_not=MEMORY_300).text
    assert "numa0  [" in text and "✗ MEMORY_MB: 300 asked is below min_unit 512" in text


def test_builder_explains_a_faded_provider_chosen_from_the_list(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    builder.ask(MEMORY_300)
    assert builder.count == 1 and builder.funnel is None and builder.funnel_view.value == ""
    listed = dict((value, label) for label, value in builder.why_pick.options)
    numa0, numa1 = scenario.provider("numa0").uuid, scenario.provider("numa1").uuid
    assert numa1 not in listed and listed[numa0].startswith("numa0: MEMORY_MB: 300 asked is below min_unit 512")
    builder.why_pick.value = numa0
    shown = builder.why_view.value
    assert "below min_unit 512" in shown and "not a multiple of step_size 256" in shown  # every reason
    assert builder.explain("cn2") and "min_unit 1024" in builder.why_view.value
    assert 'data-name="numa0"' in builder.tree_view.value and "✗ MEMORY_MB: 300" in builder.tree_view.value


def test_builder_shows_the_funnel_when_nothing_fits(scenario_graph):
    graph, _ = scenario_graph(NUMA)
    builder = RequestBuilder(graph, interactive=False)
    builder.ask("resources=VCPU:9")  # VCPU: numa0 and numa1 total 4, cn2 8 (max_unit = total)
    assert builder.count == 0 and builder.error is None
    assert builder.funnel.emptied_at == "the unsuffixed group: pass min_unit / max_unit / step_size"
    counts = [s.count for s in builder.funnel.groups[0].stages]
    assert counts[:2] == [3, 0]  # three providers have VCPU, none takes 9 at once
    assert "where the search ran dry" in builder.funnel_view.value and "emptied at" in builder.text()
    assert "emptied at" in builder.html()


def test_builder_accepts_aggregate_names(scenario_graph):
    graph, scenario = scenario_graph(NUMA)
    agg = scenario.provider("ss1").aggregates[0]  # aggA's uuid
    builder = RequestBuilder(graph, interactive=False)
    builder.ask("resources=DISK_GB:10&member_of=aggA")
    assert builder.query == f"resources=DISK_GB:10&member_of={agg}" and builder.group("").member_of.value == agg
    assert builder.notes == [f"aggregate name 'aggA' resolved to its UUID {agg}"]
    assert "resolved to its UUID" in builder.extra_view.value and builder.extra == []
    # ss1 (2000) and cn2 (1000, in aggA) have DISK_GB: both serve it.
    assert builder.count == 2 and builder.count == len(find(graph, builder.query)["allocation_requests"])
    builder.ask("resources=DISK_GB:10&member_of=nope")  # not a name: Placement's own error, unchanged
    assert builder.notes == [] and "valid UUID" in builder.error
