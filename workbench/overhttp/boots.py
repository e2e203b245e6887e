"""One claim client: boots made Nova's way, in a process of its own (see :mod:`workbench.overhttp.claims`).

A boot: ``GET /allocation_candidates`` with the flavor's resources and ``limit`` (Nova's
``max_placement_results``), pick one candidate at random (as if the scheduler's filters and weighers had
chosen it), ``PUT /allocations/{new consumer}`` (microversion 1.39, ``consumer_generation: null``). On 409
the candidates are asked for again and another pick claimed, up to ``max_retries`` times. No candidate
left is Nova's NoValidHost: the boot ends. Every boot is recorded, with the allocations it claimed.
Before the clients start together, each makes a few untimed boots and deletes them again (a warm-up).
"""

from __future__ import annotations

import random
import time
import uuid

from workbench.comparison.side_by_side import claim_body
from workbench.overhttp.client import Client

PROJECT, USER = "claim-load", "claim-load"
START_TIMEOUT = 600  # seconds for every client to be ready (32 processes on a busy 2-core machine)


def boot(client: Client, query: str, rng: random.Random, max_retries: int, deadline: float) -> dict:
    consumer = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record = {"consumer": consumer, "attempts": 0, "conflicts": [], "outcome": None, "allocations": None}
    started = time.perf_counter()
    while True:
        record["attempts"] += 1
        status, answer = client.request("GET", f"/allocation_candidates?{query}")
        if status != 200:
            record["outcome"], record["error"] = f"GET {status}", answer
            break
        if not answer["allocation_requests"]:
            record["outcome"] = "no_valid_host"
            break
        allocations = {rp: dict(a["resources"]) for rp, a in rng.choice(answer["allocation_requests"])[
            "allocations"].items()}
        status, answer = client.request("PUT", f"/allocations/{consumer}", claim_body(allocations, PROJECT, USER))
        if status == 204:
            record["outcome"], record["allocations"] = "claimed", allocations
            break
        if status != 409:
            record["outcome"], record["error"] = f"PUT {status}", answer
            break
        record["conflicts"].append((answer or {}).get("errors", [{}])[0].get("code", "?"))
        if len(record["conflicts"]) > max_retries or time.monotonic() > deadline:
            record["outcome"] = "gave_up"
            break
    record["ms"] = round((time.perf_counter() - started) * 1000, 2)
    return record


def client_process(url: str, query: str, boots: int, seed: int, max_retries: int, seconds: float, warm_up: int,
                   ready, go, results) -> None:
    """Connect, make ``warm_up`` boots and undo them, say so on the ``ready`` queue, wait for the ``go`` event
    (every client ready), make up to ``boots`` boots (none started after ``seconds``), put ``(seed, records)``
    on the ``results`` queue."""
    client, rng = Client(url), random.Random(seed)
    records: list[dict] = []
    try:
        # Before the start: connected, and boots made and undone, so that the service's search and claim
        # paths have run (a freshly started JVM compiles its query code during the first requests).
        for _ in range(warm_up):
            made = boot(client, query, rng, max_retries, time.monotonic() + START_TIMEOUT)
            if made["outcome"] == "claimed":
                client.check("DELETE", f"/allocations/{made['consumer']}")
        ready.put(seed)
        if not go.wait(timeout=START_TIMEOUT):
            raise RuntimeError(f"not started within {START_TIMEOUT} s")
        deadline = time.monotonic() + seconds
        for _ in range(boots):
            if time.monotonic() > deadline:
                break
            records.append(boot(client, query, rng, max_retries, deadline))
    except Exception as error:  # reported, never lost: the parent counts it as a failed client
        records.append({"outcome": f"client error: {error!r}", "attempts": 0, "conflicts": [], "ms": None,
                        "consumer": None, "allocations": None})
    finally:
        client.close()
        results.put((seed, records))
