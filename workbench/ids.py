"""Deterministic identifiers.

Scenario files may name things instead of giving UUIDs. The UUID is then
derived from the kind and the name, so the same scenario always produces the
same UUIDs: notebooks stay stable under nbval and two engines loaded from one
file agree on every identifier.
"""

import uuid

# A fixed namespace for uuid5; changing it changes every derived UUID.
WORKBENCH_NAMESPACE = uuid.UUID("5b0d7c1e-8d43-4b8f-9a51-0c6f1f0a7e10")


def derive_uuid(kind: str, name: str) -> str:
    """Return the UUID that a ``kind`` (provider, aggregate, consumer) named ``name`` gets."""
    return str(uuid.uuid5(WORKBENCH_NAMESPACE, f"{kind}:{name}"))


def normalise_uuid(value: str) -> str | None:
    """Return ``value`` as a canonical lower-case UUID string, or None if it is not a UUID.

    Placement accepts UUIDs with or without dashes and returns them dashed.
    """
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        return None
