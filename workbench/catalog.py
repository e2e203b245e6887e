"""The standard trait and resource-class catalogues Placement itself uses.

Placement syncs these from the ``os-traits`` and ``os-resource-classes``
packages at start-up; the workbench reads the same packages, so both engines
know the same standard names. Custom names must start with ``CUSTOM_``.
"""

import functools
import re

import os_resource_classes
import os_traits

CUSTOM_PREFIX = "CUSTOM_"
# Placement's schema for custom trait and resource-class names.
CUSTOM_NAME = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
# The sharing rule: a provider with this trait shares its inventory with every
# provider that has an aggregate in common with it.
SHARES_VIA_AGGREGATE = "MISC_SHARES_VIA_AGGREGATE"


@functools.cache
def standard_traits() -> frozenset[str]:
    return frozenset(os_traits.get_traits())


@functools.cache
def standard_resource_classes() -> frozenset[str]:
    return frozenset(os_resource_classes.STANDARDS)


def is_custom(name: str) -> bool:
    return bool(CUSTOM_NAME.match(name))
