"""Real clients see no difference: the `openstack` CLI (osc-placement) and openstacksdk's placement proxy,
run against `workbench serve` (the graph) and against the real Placement 16.0.0 (`workbench placement-serve`,
SQLite), both over HTTP on 127.0.0.1, give the same parsed answers for the same commands.

Every identifier is given by the test (provider, aggregate and consumer uuids), so the answers must match
generations included. Left aside: timestamps (none of these commands shows one) and the order in which
entries of a JSON object or an unordered list are printed (see ``rows``). Error messages are compared too:
a client prints what the service said.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from workbench.comparison.placement_serve import ServerProcess

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # openstacksdk's own

CN1, NUMA0, SDK1 = (f"{n}{n}{n}{n}{n}{n}{n}{n}-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
AGG1, AGG2 = "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
VM1, VM2 = "c0000000-0000-4000-8000-000000000001", "c0000000-0000-4000-8000-000000000002"
PROJECT, USER = "e0000000-0000-4000-8000-000000000001", "f0000000-0000-4000-8000-000000000001"
TIMESTAMPS = {"created_at", "updated_at"}
JOINED_ENTRIES = re.compile(r"\w+=[^,=]+(,\w+=[^,=]+)+")

# One `openstack` session per service (its interactive shell reads commands from stdin, so the CLI starts
# once: about 1.5 s instead of 1.5 s per command). Each command that succeeds prints one JSON document.
CLI_COMMANDS = [
    f"resource provider create cn1 --uuid {CN1}",
    f"resource provider create cn1-numa0 --uuid {NUMA0} --parent-provider {CN1}",
    "resource provider list",
    f"resource provider list --in-tree {NUMA0}",
    f"resource provider show {CN1}",
    f"resource provider inventory set {CN1} --resource VCPU=8 --resource VCPU:allocation_ratio=2.0"
    " --resource MEMORY_MB=4096 --resource MEMORY_MB:reserved=512",
    f"resource provider inventory set {NUMA0} --resource SRIOV_NET_VF=4 --resource SRIOV_NET_VF:max_unit=2",
    f"resource provider inventory list {CN1}",
    f"resource provider inventory show {NUMA0} SRIOV_NET_VF",
    "trait create CUSTOM_GOLD",
    f"resource provider trait set {CN1} --trait HW_CPU_X86_AVX2 --trait CUSTOM_GOLD",
    f"resource provider trait list {CN1}",
    # Since 1.19 the provider's generation must be given: 2 after creation, inventories and traits.
    f"resource provider aggregate set {CN1} --aggregate {AGG1} --aggregate {AGG2} --generation 2",
    f"resource provider aggregate list {CN1}",
    f"resource provider show {CN1} --allocations",
    "allocation candidate list --resource VCPU=2 --resource MEMORY_MB=1024 --required HW_CPU_X86_AVX2",
    "allocation candidate list --resource VCPU=2 --resource SRIOV_NET_VF=1 --member-of " + AGG1,
    "allocation candidate list --resource VCPU=100",
    f"resource provider allocation set {VM1} --allocation rp={CN1},VCPU=4,MEMORY_MB=2048"
    f" --allocation rp={NUMA0},SRIOV_NET_VF=2 --project-id {PROJECT} --user-id {USER} --consumer-type INSTANCE",
    f"resource provider allocation show {VM1}",
    f"resource provider usage show {CN1}",
    f"resource provider usage show {NUMA0}",
    f"resource usage show {PROJECT}",
    f"resource usage show {PROJECT} --user-id {USER}",
    # Refused: over capacity (8 VCPU x 2.0 = 16, 4 used), then a provider with a child cannot go.
    f"resource provider allocation set {VM2} --allocation rp={CN1},VCPU=13"
    f" --project-id {PROJECT} --user-id {USER} --consumer-type INSTANCE",
    f"resource provider delete {CN1}",
    f"resource provider allocation delete {VM1}",
    f"resource provider usage show {CN1}",
    f"resource provider delete {NUMA0}",
    f"resource provider delete {CN1}",
    "resource provider list",
]
# The commands above that print nothing on success (set-and-delete commands print no table).
SILENT = ("resource provider allocation delete", "resource provider delete", "trait create")
# And the two that must be refused (409), with the message on stderr.
REFUSED = 2


@pytest.fixture(scope="module")
def services(neo4j_uri):
    """Both services over HTTP, empty: the graph on the session's Neo4j, the real Placement on SQLite."""
    from workbench.graphdb.db import Graph

    with Graph.connect(neo4j_uri) as graph:
        graph.reset()
    servers = {"graph": ServerProcess("graph", workers=1), "placement": ServerProcess("placement", workers=1)}
    try:
        for server in servers.values():
            server.launch()  # both at once: each spends seconds importing and preparing
        for server in servers.values():
            server.wait_ready()
        yield {kind: server.url for kind, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def run_cli(url: str, commands: list[str]) -> tuple[list, list[str]]:
    """Run ``commands`` in one `openstack` shell against ``url``: (parsed JSON outputs, error lines)."""
    env = dict(
        os.environ, OS_AUTH_TYPE="admin_token", OS_ENDPOINT=url, OS_TOKEN="admin", OS_PLACEMENT_API_VERSION="1.39"
    )
    openstack = Path(sys.executable).with_name("openstack")
    script = "".join(f"{command} -f json\n" if not command.startswith(SILENT) else f"{command}\n"
                     for command in commands)  # fmt: skip
    done = subprocess.run([str(openstack)], input=script, env=env, capture_output=True, text=True, timeout=120)
    outputs, decoder, text = [], json.JSONDecoder(), done.stdout.strip()
    while text:
        document, end = decoder.raw_decode(text)
        outputs.append(document)
        text = text[end:].lstrip()
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    return outputs, errors


def without_timestamps(value):
    if isinstance(value, dict):
        return {k: without_timestamps(v) for k, v in value.items() if k not in TIMESTAMPS}
    if isinstance(value, list):
        return [without_timestamps(v) for v in value]
    return value


def rows(value):
    """A command's output in a canonical order. The CLI prints a JSON object's entries (inventories,
    usages, resources by class) as rows, or joined as "VCPU=2,MEMORY_MB=1024", in the object's key order,
    which JSON leaves unspecified (Placement's follows its class ids; the graph's need not): which entries
    there are is what must agree, so rows and such joined entries are sorted."""
    value = without_timestamps(value)
    if isinstance(value, list):
        return sorted((rows(v) for v in value), key=lambda row: json.dumps(row, sort_keys=True))
    if isinstance(value, dict):
        return {k: rows(v) for k, v in value.items()}
    if isinstance(value, str) and JOINED_ENTRIES.fullmatch(value):
        return ",".join(sorted(value.split(",")))
    return value


def test_the_openstack_cli_gets_the_same_answers_from_both(services):
    with ThreadPoolExecutor(2) as pool:  # the two sessions at once; each service sees its own in order
        (graph_out, graph_errors), (placement_out, placement_errors) = pool.map(
            lambda url: run_cli(url, CLI_COMMANDS), (services["graph"], services["placement"])
        )

    printing = [c for c in CLI_COMMANDS if not c.startswith(SILENT)]
    assert len(placement_out) == len(printing) - 1, placement_errors  # the refused allocation prints nothing
    assert len(placement_errors) == REFUSED, placement_errors
    for command, ours, theirs in zip([c for c in printing if VM2 not in c], graph_out, placement_out):
        assert rows(ours) == rows(theirs), command
    assert graph_errors == placement_errors  # the same refusals, in the same words

    # What Placement's docs say these answers are, so that two equal wrong answers cannot pass.
    answers = list(zip([c for c in printing if VM2 not in c], placement_out))

    def first(command: str):
        return next(output for run, output in answers if run == command)

    listed = first(f"resource provider list --in-tree {NUMA0}")
    assert {(p["uuid"], p["root_provider_uuid"]) for p in listed} == {(CN1, CN1), (NUMA0, CN1)}
    candidates = first("allocation candidate list --resource VCPU=2 --resource SRIOV_NET_VF=1 --member-of " + AGG1)
    # VCPU from cn1 (in the aggregate), the VF from its child (same tree; member_of is checked on the root).
    assert sorted((row["resource provider"], row["allocation"]) for row in candidates) == sorted(
        [(CN1, "VCPU=2"), (NUMA0, "SRIOV_NET_VF=1")]
    )
    assert first("allocation candidate list --resource VCPU=100") == []
    usage = {row["resource_class"]: row["usage"] for row in first(f"resource provider usage show {CN1}")}
    assert usage == {"VCPU": 4, "MEMORY_MB": 2048}
    assert all(line.endswith("(HTTP 409)") for line in placement_errors), placement_errors
    assert placement_out[-1] == []  # both providers deleted at the end


def sdk_calls(url: str) -> list:
    """The same openstacksdk placement proxy calls against ``url``, each answer as plain data."""
    import openstack

    conn = openstack.connect(
        auth_type="admin_token", auth={"endpoint": url, "token": "admin"}, placement_api_version="1.39",
        load_yaml_config=False, load_envvars=False,
    )  # fmt: skip
    proxy = conn.placement

    def data(resource) -> dict:
        return resource.to_dict(computed=False)

    answers = [
        data(proxy.create_resource_class(name="CUSTOM_SDK_WIDGET")),
        data(proxy.create_resource_provider(name="sdk1", uuid=SDK1)),
        data(proxy.create_resource_provider_inventory(SDK1, "VCPU", total=16, allocation_ratio=1.5)),
        data(proxy.create_resource_provider_inventory(SDK1, "CUSTOM_SDK_WIDGET", total=3, max_unit=1)),
        sorted((data(inv) for inv in proxy.resource_provider_inventories(SDK1)), key=lambda i: i["resource_class"]),
        data(proxy.get_resource_provider_aggregates(SDK1)),
        [data(rp) for rp in proxy.resource_providers(resources="CUSTOM_SDK_WIDGET:1")],
        [data(c) for c in proxy.allocation_candidates(resources="VCPU:2,CUSTOM_SDK_WIDGET:1")],
        data(proxy.update_allocation(
            VM1, allocations={SDK1: {"resources": {"VCPU": 2, "CUSTOM_SDK_WIDGET": 1}}},
            project_id=PROJECT, user_id=USER, consumer_type="INSTANCE", consumer_generation=None,
        )),  # fmt: skip
        data(proxy.get_allocation(VM1)),
        data(proxy.fetch_resource_provider_usages(SDK1)),
        [data(u) for u in proxy.usages(PROJECT)],
        [data(t) for t in proxy.traits(name="startswith:HW_CPU_X86_AVX5")],
        data(proxy.get_resource_provider(SDK1)),
    ]
    proxy.delete_allocation(VM1)
    proxy.delete_resource_provider(SDK1)
    answers.append([data(rp) for rp in proxy.resource_providers(name="sdk1")])
    proxy.delete_resource_class("CUSTOM_SDK_WIDGET")
    conn.close()
    return answers


def test_openstacksdk_gets_the_same_answers_from_both(services):
    with ThreadPoolExecutor(2) as pool:
        ours, theirs = pool.map(sdk_calls, (services["graph"], services["placement"]))
    assert len(ours) == len(theirs)
    for n, (mine, real) in enumerate(zip(ours, theirs)):
        assert rows(mine) == rows(real), f"call {n}"  # a list of traits, too, comes in no promised order
    # Two candidates? No: one provider holds both classes, so exactly one, taking both from sdk1.
    (candidate,) = theirs[7]
    assert candidate["allocations"] == {SDK1: {"resources": {"VCPU": 2, "CUSTOM_SDK_WIDGET": 1}}}
    assert theirs[10]["usages"] == {"VCPU": 2, "CUSTOM_SDK_WIDGET": 1}
    assert theirs[-1] == []


def test_placement_serve_refuses_a_port_in_use_in_words(services):
    port = services["placement"].rsplit(":", 1)[1]
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "placement-serve", "--port", port],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is already in use; choose another with --port" in done.stderr
