"""Normalise and diff ``GET /allocation_candidates`` response bodies.

Both engines answer with Placement 1.39 JSON bodies. Placement's order of
``allocation_requests`` is not stable (random UUIDs, set iteration), and the
order of keys and of ``mappings`` lists carries no meaning, so bodies are
compared in an order-free canonical form:

* each allocation request becomes ``{"allocations": {rp: {rc: amount}},
  "mappings": {suffix: sorted([rp, ...])}}`` (the ``resources`` level of the
  body is dropped; ``mappings`` is ``{}`` before microversion 1.34);
* the requests are kept as a list sorted by canonical JSON, i.e. a multiset:
  order is ignored but a duplicated request still counts twice;
* ``provider_summaries`` are kept as given, with ``traits`` sorted.

:func:`normalise_candidates` is idempotent, so :func:`diff_candidates`
accepts raw bodies and normalised ones alike.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

__all__ = ["normalise_candidates", "diff_candidates", "canonical_json", "format_request"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def is_candidates_body(body: Any) -> bool:
    return isinstance(body, dict) and "allocation_requests" in body


def _normalise_request(request: dict) -> dict:
    allocations: dict[str, dict[str, int]] = {}
    raw = request.get("allocations", {})
    if isinstance(raw, list):  # microversions before 1.12
        for item in raw:
            rp = item["resource_provider"]["uuid"]
            allocations.setdefault(rp, {}).update(item["resources"])
    else:
        for rp, value in raw.items():
            resources = value.get("resources", value) if isinstance(value, dict) else value
            allocations[rp] = dict(resources)
    mappings = {suffix: sorted(rps) for suffix, rps in (request.get("mappings") or {}).items()}
    return {"allocations": allocations, "mappings": mappings}


def _normalise_summary(summary: dict) -> dict:
    summary = dict(summary)
    if "traits" in summary and summary["traits"] is not None:
        summary["traits"] = sorted(summary["traits"])
    return summary


def normalise_candidates(body: dict) -> dict:
    """The order-free canonical form of an allocation-candidates body."""
    if not is_candidates_body(body):
        raise ValueError(f"not an allocation candidates body: {canonical_json(body)[:200]}")
    requests = [_normalise_request(r) for r in body["allocation_requests"]]
    requests.sort(key=canonical_json)
    summaries = {rp: _normalise_summary(s) for rp, s in (body.get("provider_summaries") or {}).items()}
    return {"allocation_requests": requests, "provider_summaries": dict(sorted(summaries.items()))}


# -- diff ---------------------------------------------------------------------


def _namer(names: dict[str, str] | None):
    names = names or {}

    def name(uuid: str) -> str:
        return names.get(uuid, uuid)

    return name


def format_request(request: dict, names: dict[str, str] | None = None) -> str:
    """One line for a (normalised) allocation request, providers by name.

    e.g. ``numa0{VCPU:2} + shared{DISK_GB:10} | "": [numa0, shared]``
    """
    name = _namer(names)
    request = _normalise_request(request)
    parts = []
    for rp, resources in sorted(request["allocations"].items(), key=lambda kv: name(kv[0])):
        amounts = ", ".join(f"{rc}:{n}" for rc, n in sorted(resources.items()))
        parts.append(f"{name(rp)}{{{amounts}}}")
    text = " + ".join(parts) or "(nothing)"
    if request["mappings"]:
        maps = "; ".join(
            f"{json.dumps(suffix)}: [{', '.join(sorted(name(rp) for rp in rps))}]"
            for suffix, rps in sorted(request["mappings"].items())
        )
        text += f" | {maps}"
    return text


def _paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into {"a.b.c": leaf}."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_paths(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _summary_differences(expected: dict, actual: dict, name) -> list[str]:
    e, a = _paths(expected), _paths(actual)
    out = []
    for path in sorted(set(e) | set(a)):
        ev, av = e.get(path, "<absent>"), a.get(path, "<absent>")
        if ev != av:
            if path in ("parent_provider_uuid", "root_provider_uuid"):
                ev, av = (name(v) if isinstance(v, str) and v != "<absent>" else v for v in (ev, av))
            out.append(f"{path}: expected {_short(ev)}, actual {_short(av)}")
    return out


def _short(value: Any) -> str:
    return value if isinstance(value, str) and value == "<absent>" else json.dumps(value)


def _diff_other(expected: Any, actual: Any) -> str:
    """Diff bodies that are not both candidate bodies (errors, None)."""

    def strip(body):
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            return {"errors": [{k: v for k, v in e.items() if k != "request_id"} for e in body["errors"]]}
        return body

    e, a = strip(expected), strip(actual)
    if canonical_json(e) == canonical_json(a):
        return ""
    return f"bodies differ:\n  expected: {canonical_json(e)}\n  actual:   {canonical_json(a)}"


def diff_candidates(expected: dict, actual: dict, names: dict[str, str] | None = None) -> str:
    """Explain how two candidates bodies differ; empty string when they agree.

    ``names`` maps provider UUIDs to names, used in the explanation. Requests
    only on one side are listed; where one request on each side has the same
    providers and mappings they are shown together as a changed amount.
    """
    if not (is_candidates_body(expected) and is_candidates_body(actual)):
        return _diff_other(expected, actual)
    name = _namer(names)
    exp, act = normalise_candidates(expected), normalise_candidates(actual)
    lines: list[str] = []

    # allocation requests, as multisets
    ce = Counter(canonical_json(r) for r in exp["allocation_requests"])
    ca = Counter(canonical_json(r) for r in act["allocation_requests"])
    only_e, only_a = ce - ca, ca - ce
    if only_e or only_a:
        common = sum((ce & ca).values())
        lines.append(
            f"allocation requests: {sum(ce.values())} expected, {sum(ca.values())} actual, {common} in both"
        )

        def shape(key: str) -> str:
            r = json.loads(key)
            return canonical_json([sorted(r["allocations"]), sorted(sorted(v) for v in r["allocations"].values()), r["mappings"]])

        # pair requests that differ only in amounts
        changed = []
        rest_a = Counter(only_a)
        for key_e in sorted(only_e.elements()):
            match = next((k for k in sorted(rest_a) if rest_a[k] and shape(k) == shape(key_e)), None)
            if match is not None:
                rest_a[match] -= 1
                changed.append((key_e, match))
        paired_e = Counter(k for k, _ in changed)
        rest_e = only_e - paired_e
        rest_a = +rest_a

        def listing(title: str, counter: Counter):
            if counter:
                lines.append(f"  {title} ({sum(counter.values())}):")
                for key in sorted(counter, key=lambda k: format_request(json.loads(k), names)):
                    times = f"  (x{counter[key]})" if counter[key] > 1 else ""
                    lines.append(f"    - {format_request(json.loads(key), names)}{times}")

        listing("only in expected", rest_e)
        listing("only in actual", rest_a)
        if changed:
            lines.append(f"  amounts differ ({len(changed)}):")
            for key_e, key_a in changed:
                lines.append(f"    expected: {format_request(json.loads(key_e), names)}")
                lines.append(f"    actual:   {format_request(json.loads(key_a), names)}")

    # provider summaries
    se, sa = exp["provider_summaries"], act["provider_summaries"]
    summary_lines = []
    for title, keys in (("only in expected", set(se) - set(sa)), ("only in actual", set(sa) - set(se))):
        if keys:
            summary_lines.append(f"  {title}: {', '.join(sorted(name(k) for k in keys))}")
    for rp in sorted(set(se) & set(sa), key=name):
        differences = _summary_differences(se[rp], sa[rp], name)
        if differences:
            summary_lines.append(f"  {name(rp)}:")
            summary_lines.extend(f"    {d}" for d in differences)
    if summary_lines:
        lines.append("provider summaries differ:")
        lines.extend(summary_lines)
    return "\n".join(lines)
