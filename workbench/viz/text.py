"""The drawing as plain text: what a notebook shows where it can show nothing else.

Deterministic (no addresses, no random ids), so nbval can compare it.
"""

from __future__ import annotations

from workbench.viz.model import Drawing

USED_MARK = "*"


def drawing_text(drawing: Drawing) -> str:
    """One line per box, indented by depth; ``*`` marks what the candidate uses."""
    lines = [drawing.title, *drawing.notes]
    names = {n.id: n.name for n in drawing.nodes}
    holds: dict[str, list[str]] = {}
    for edge in drawing.edges:
        if edge.kind == "consumes":
            holds.setdefault(edge.target, []).append(f"{names[edge.source]}: {edge.label}")
    for node in drawing.nodes:
        mark = USED_MARK if node.highlighted else " "
        if node.kind == "consumer":
            lines.append(f"{mark} {node.name} ({', '.join(node.extra)}) holds " + "; ".join(sorted(holds.get(node.id, []))))
            continue
        usage = "; ".join(
            f"{u.resource_class} {u.used}/{u.capacity}" + (f" +{u.taken}" if u.taken else "") for u in node.usages
        )
        line = f"{mark} {'  ' * node.level}{node.name}"
        if usage:
            line += f"  [{usage}]"
        if node.kind == "more":
            line += f"  ({node.folded} providers in all)"
        elif node.folded:
            line += f"  (+{node.folded} below)"
        line += "".join(f"  {fact}" for fact in node.extra if fact.startswith("shares its inventory"))
        if node.why_not:
            line += f"  ✗ {node.why_not}"
        lines.append(line)
    if drawing.candidate is not None:
        lines.append(f"({USED_MARK} = used by the candidate, +n = the amount it takes)")
    return "\n".join(lines)
