"""Scenario files: a cloud described in YAML, parsed and validated.

A scenario names providers (nested through ``children``), their inventories,
traits and aggregates, and optionally consumers with allocations and quotas.
Parsing is pure Python and checks everything before anything is written, so a
bad file is refused with the file name, the path to the bad field and the
reason, and the database is never half-loaded.

The result is a :class:`Scenario`: providers flattened parent-first, every
name resolved to a UUID, every inventory filled with Placement's defaults.
Both engines (the graph and the real Placement) are loaded from it.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from workbench import catalog
from workbench.ids import derive_uuid, normalise_uuid

MAX_INT = 2147483647  # Placement's upper bound for inventory integers
# Placement's string limits (its JSON schemas): a provider name, and a trait, a
# resource class, a project, user or consumer type. Longer ones would also fail
# in Neo4j, whose indexes refuse values over about 8 KB.
NAME_MAX = 200
STRING_MAX = 255
# Aliases may make a document bigger than its text, but not by more than this
# many times (or MIN_ALIAS_ROOM nodes): a "billion laughs" file is refused.
ALIAS_GROWTH = 10
MIN_ALIAS_ROOM = 10000
DEFAULT_CONSUMER_TYPE = "INSTANCE"
CONSUMER_TYPE = re.compile(r"^[A-Z0-9_]+$")

# Placement's inventory defaults (placement/handlers/inventory.py).
INVENTORY_DEFAULTS = {
    "reserved": 0,
    "min_unit": 1,
    "max_unit": MAX_INT,
    "step_size": 1,
    "allocation_ratio": 1.0,
}


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; says where and why."""

    def __init__(self, source: str, path: str, reason: str):
        self.source, self.path, self.reason = source, path, reason
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {reason}")


@dataclasses.dataclass(frozen=True)
class Inventory:
    resource_class: str
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int = MAX_INT
    step_size: int = 1
    allocation_ratio: float = 1.0

    @property
    def capacity(self) -> int:
        """What can be allocated: Placement's int((total - reserved) * allocation_ratio)."""
        return int((self.total - self.reserved) * self.allocation_ratio)

    def fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in ("total", *INVENTORY_DEFAULTS)}


@dataclasses.dataclass
class Provider:
    name: str
    uuid: str
    parent_uuid: str | None
    traits: list[str]
    aggregates: list[str]
    inventories: dict[str, Inventory]


@dataclasses.dataclass
class Consumer:
    uuid: str
    project: str
    user: str
    consumer_type: str
    allocations: dict[str, dict[str, int]]  # provider uuid -> class -> amount


@dataclasses.dataclass
class Quota:
    project: str
    user: str | None
    consumer_type: str | None
    limits: dict[str, int]


@dataclasses.dataclass
class Scenario:
    name: str
    source: str
    description: str
    resource_classes: list[str]  # custom classes to create
    traits: list[str]  # custom traits to create
    providers: list[Provider]  # parents before children
    consumers: list[Consumer]
    quotas: list[Quota]
    aggregate_names: dict[str, str]  # aggregate uuid -> name, where a name was used

    def provider(self, name_or_uuid: str) -> Provider:
        for p in self.providers:
            if name_or_uuid in (p.name, p.uuid):
                return p
        raise KeyError(name_or_uuid)

    def tree_chunks(self, size: int) -> Iterator[list[Provider]]:
        """The providers in groups of whole trees, a new group starting at the
        first root after ``size`` providers; always at least one group (empty
        for a scenario without providers)."""
        chunk: list[Provider] = []
        for provider in self.providers:  # parents come before their children
            if provider.parent_uuid is None and len(chunk) >= size:
                yield chunk
                chunk = []
            chunk.append(provider)
        yield chunk


# libyaml's safe loader when PyYAML has it: same documents, same error marks,
# and a 50,000-provider file reads in seconds instead of about 20 s.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_file(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, "", f"cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(source, f"byte {exc.start}", f"not UTF-8 text ({exc.reason})") from None
    try:
        document = _read_yaml(text, source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(source, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if document is None:
        # Loaded with --reset it would silently empty the database.
        raise ScenarioError(source, "", "the file holds no scenario; an empty cloud is written `providers: []`")
    return parse(document, source=source, default_name=path.stem)


def _read_yaml(text: str, source: str) -> Any:
    """The YAML document, refused before it is built if its aliases blow it up or a
    mapping repeats a key (YAML says keys are unique; PyYAML keeps the last)."""
    loader = _SAFE_LOADER(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_nodes(root, source)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _check_nodes(root: yaml.Node, source: str) -> None:
    """Walk the node graph once (an alias is the same node object again), sizing
    each node as it would be expanded, and checking every mapping's keys."""
    size: dict[int, int] = {}  # id(node) -> nodes it expands to
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done:
            on_path.discard(id(node))
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
            continue
        if id(node) in size:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            _check_keys(node, source)
        for child in children:
            if id(child) in on_path:
                raise ScenarioError(source, _where(child), "an alias refers to a node that contains it")
            stack.append((child, False))
    allowed = max(MIN_ALIAS_ROOM, ALIAS_GROWTH * len(size))
    if size[id(root)] > allowed:
        raise ScenarioError(
            source, "", f"aliases expand the document to {size[id(root)]:,} nodes, more than the {allowed:,} "
            f"allowed for its {len(size):,} written ones"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_keys(node: yaml.MappingNode, source: str) -> None:
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue  # merge keys (<<) may be overridden: that is what they are for
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise ScenarioError(source, _where(key), f"duplicate key '{key.value}' (first at {_where(first)})")


def _where(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}, column {node.start_mark.column + 1}"


def parse(document: Any, source: str = "<scenario>", default_name: str = "scenario") -> Scenario:
    """Validate a scenario given as Python data (as read from YAML)."""
    return _Parser(source).scenario(document, default_name)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, reason: str):
        raise ScenarioError(self.source, path, reason)

    # -- small typed readers ------------------------------------------------
    def mapping(self, value, path, allowed, required=()):
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                self.fail(_join(path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.fail(path, f"missing required key '{key}'")
        return value

    def sequence(self, value, path):
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(path, f"expected a list, got {_kind(value)}")
        return value

    def string(self, value, path, maximum=STRING_MAX):
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty string, got {_kind(value)}")
        if len(value) > maximum:
            self.fail(path, f"is {len(value)} characters long; Placement allows at most {maximum}")
        return value

    def integer(self, value, path, minimum, maximum=MAX_INT):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"expected an integer, got {_kind(value)}")
        if not minimum <= value <= maximum:
            self.fail(path, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def consumer_type(self, value, path):
        value = self.string(value, path)
        if not CONSUMER_TYPE.match(value):
            self.fail(path, f"'{value}' must match [A-Z0-9_]+ (Placement's consumer types)")
        return value

    def uuid(self, value, path):
        canonical = normalise_uuid(value) if isinstance(value, str) else None
        if canonical is None:
            self.fail(path, f"expected a UUID, got {value!r}")
        return canonical

    # -- the document ---------------------------------------------------------
    def scenario(self, doc, default_name) -> Scenario:
        if doc is None:
            doc = {}
        self.mapping(
            doc,
            "",
            {"name", "description", "resource_classes", "traits", "providers", "consumers", "quotas"},
        )
        self.custom_classes = self.custom_names(doc.get("resource_classes"), "resource_classes")
        self.custom_traits = self.custom_names(doc.get("traits"), "traits")
        self.aggregate_names: dict[str, str] = {}
        self.providers: list[Provider] = []
        self.by_key: dict[str, Provider] = {}
        for i, item in enumerate(self.sequence(doc.get("providers"), "providers")):
            self.provider(item, f"providers[{i}]", parent=None)
        consumers = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.sequence(doc.get("consumers"), "consumers")):
            consumer = self.consumer(item, f"consumers[{i}]")
            if consumer.uuid in seen:
                key = "uuid" if "uuid" in item else "name"
                self.fail(f"consumers[{i}].{key}", f"duplicate consumer {consumer.uuid} (also consumers[{seen[consumer.uuid]}])")
            seen[consumer.uuid] = i
            consumers.append(consumer)
        self.check_capacity(consumers)
        quotas = [self.quota(item, f"quotas[{i}]") for i, item in enumerate(self.sequence(doc.get("quotas"), "quotas"))]
        self.check_quotas(quotas, consumers)
        return Scenario(
            name=self.string(doc.get("name", default_name), "name"),
            source=self.source,
            description=str(doc.get("description") or "").strip(),
            resource_classes=sorted(self.custom_classes),
            traits=sorted(self.custom_traits),
            providers=self.providers,
            consumers=consumers,
            quotas=quotas,
            aggregate_names=self.aggregate_names,
        )

    def custom_names(self, value, path) -> set[str]:
        names = set()
        for i, name in enumerate(self.sequence(value, path)):
            name = self.string(name, f"{path}[{i}]")
            if not catalog.is_custom(name):
                self.fail(f"{path}[{i}]", f"'{name}' is not a custom name (must match CUSTOM_[A-Z0-9_]+)")
            names.add(name)
        return names

    def trait(self, name, path) -> str:
        name = self.string(name, path)
        if name in catalog.standard_traits():
            return name
        if catalog.is_custom(name):
            self.custom_traits.add(name)
            return name
        self.fail(path, f"unknown trait '{name}' (not an os-traits name and not CUSTOM_*)")

    def resource_class(self, name, path) -> str:
        name = self.string(name, path)
        if name in catalog.standard_resource_classes():
            return name
        if catalog.is_custom(name):
            self.custom_classes.add(name)
            return name
        self.fail(path, f"unknown resource class '{name}' (not an os-resource-classes name and not CUSTOM_*)")

    def aggregate(self, value, path) -> str:
        value = self.string(value, path)
        canonical = normalise_uuid(value)
        if canonical:
            return canonical
        canonical = derive_uuid("aggregate", value)
        self.aggregate_names[canonical] = value
        return canonical

    def provider(self, item, path, parent: Provider | None):
        self.mapping(item, path, {"name", "uuid", "traits", "aggregates", "inventories", "children"}, ("name",))
        name = self.string(item["name"], _join(path, "name"), NAME_MAX)
        uuid = self.uuid(item["uuid"], _join(path, "uuid")) if "uuid" in item else derive_uuid("provider", name)
        for key, what in ((name, "name"), (uuid, "uuid")):
            if key in self.by_key:
                self.fail(_join(path, what), f"duplicate provider {what} '{key}' (first used by '{self.by_key[key].name}')")
        traits = [self.trait(t, f"{path}.traits[{i}]") for i, t in enumerate(self.sequence(item.get("traits"), _join(path, "traits")))]
        aggregates = [
            self.aggregate(a, f"{path}.aggregates[{i}]")
            for i, a in enumerate(self.sequence(item.get("aggregates"), _join(path, "aggregates")))
        ]
        inventories = {}
        inv_path = _join(path, "inventories")
        for rc, spec in (self.mapping(item.get("inventories") or {}, inv_path, _Anything()) or {}).items():
            rc = self.resource_class(rc, _join(inv_path, rc))
            inventories[rc] = self.inventory(rc, spec, _join(inv_path, rc))
        provider = Provider(
            name=name,
            uuid=uuid,
            parent_uuid=parent.uuid if parent else None,
            traits=sorted(set(traits)),
            aggregates=sorted(set(aggregates)),
            inventories=inventories,
        )
        self.providers.append(provider)
        self.by_key[name] = self.by_key[uuid] = provider
        for i, child in enumerate(self.sequence(item.get("children"), _join(path, "children"))):
            self.provider(child, f"{path}.children[{i}]", parent=provider)

    def inventory(self, rc, spec, path) -> Inventory:
        if not isinstance(spec, dict):
            spec = {"total": spec}
        self.mapping(spec, path, {"total", *INVENTORY_DEFAULTS}, ("total",))
        fields = dict(INVENTORY_DEFAULTS, **spec)
        total = self.integer(fields["total"], _join(path, "total"), 1)
        reserved = self.integer(fields["reserved"], _join(path, "reserved"), 0)
        min_unit = self.integer(fields["min_unit"], _join(path, "min_unit"), 1)
        max_unit = self.integer(fields["max_unit"], _join(path, "max_unit"), 1)
        step_size = self.integer(fields["step_size"], _join(path, "step_size"), 1)
        ratio = fields["allocation_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 3.40282e38:
            self.fail(_join(path, "allocation_ratio"), f"expected a number greater than 0, got {ratio!r}")
        # Since microversion 1.26 reserved may equal total (a parked node), but not exceed it.
        if reserved > total:
            self.fail(_join(path, "reserved"), f"reserved ({reserved}) is greater than total ({total})")
        if min_unit > max_unit:
            self.fail(_join(path, "min_unit"), f"min_unit ({min_unit}) is greater than max_unit ({max_unit})")
        return Inventory(rc, total, reserved, min_unit, max_unit, step_size, float(ratio))

    def consumer(self, item, path) -> Consumer:
        self.mapping(item, path, {"name", "uuid", "project", "user", "consumer_type", "allocations"}, ("project", "user"))
        if "uuid" in item:
            uuid = self.uuid(item["uuid"], _join(path, "uuid"))
        elif "name" in item:
            uuid = derive_uuid("consumer", self.string(item["name"], _join(path, "name")))
        else:
            self.fail(path, "a consumer needs a 'uuid' or a 'name'")
        consumer_type = self.consumer_type(item.get("consumer_type", DEFAULT_CONSUMER_TYPE), _join(path, "consumer_type"))
        allocations: dict[str, dict[str, int]] = {}
        alloc_path = _join(path, "allocations")
        for key, resources in self.mapping(item.get("allocations") or {}, alloc_path, _Anything()).items():
            rp_path = _join(alloc_path, str(key))
            provider = self.by_key.get(str(key)) or self.by_key.get(normalise_uuid(key) or "")
            if provider is None:
                self.fail(rp_path, f"unknown provider '{key}'")
            for rc, amount in self.mapping(resources, rp_path, _Anything()).items():
                inv = provider.inventories.get(rc)
                if inv is None:
                    self.fail(_join(rp_path, rc), f"provider '{provider.name}' has no {rc} inventory")
                amount = self.integer(amount, _join(rp_path, rc), 1)
                if not inv.min_unit <= amount <= inv.max_unit or amount % inv.step_size:
                    self.fail(
                        _join(rp_path, rc),
                        f"{amount} does not fit {provider.name}'s {rc} inventory "
                        f"(min_unit {inv.min_unit}, max_unit {inv.max_unit}, step_size {inv.step_size})",
                    )
                allocations.setdefault(provider.uuid, {})[rc] = amount
        if not allocations:
            # Placement keeps a consumer only while it holds something.
            self.fail(alloc_path, "a consumer needs at least one allocation")
        return Consumer(
            uuid=uuid,
            project=self.string(item["project"], _join(path, "project")),
            user=self.string(item["user"], _join(path, "user")),
            consumer_type=consumer_type,
            allocations=allocations,
        )

    def check_capacity(self, consumers: list[Consumer]):
        used: dict[tuple[str, str], int] = {}
        for i, consumer in enumerate(consumers):
            for rp_uuid, resources in consumer.allocations.items():
                provider = self.by_key[rp_uuid]
                for rc, amount in resources.items():
                    used[rp_uuid, rc] = used.get((rp_uuid, rc), 0) + amount
                    capacity = provider.inventories[rc].capacity
                    if used[rp_uuid, rc] > capacity:
                        self.fail(
                            f"consumers[{i}].allocations.{provider.name}.{rc}",
                            f"allocations on {provider.name} reach {used[rp_uuid, rc]} {rc}, "
                            f"beyond its capacity of {capacity}",
                        )

    def check_quotas(self, quotas: list[Quota], consumers: list[Consumer]):
        """The consumers a scenario starts with must fit its quotas."""
        for i, quota in enumerate(quotas):
            for rc, limit in quota.limits.items():
                held = sum(
                    amount
                    for c in consumers
                    if c.project == quota.project
                    and quota.user in (None, c.user)
                    and quota.consumer_type in (None, c.consumer_type)
                    for resources in c.allocations.values()
                    for cls, amount in resources.items()
                    if cls == rc
                )
                if held > limit:
                    self.fail(f"quotas[{i}].limits.{rc}", f"the scenario's consumers already hold {held} {rc}, over the limit of {limit}")

    def quota(self, item, path) -> Quota:
        self.mapping(item, path, {"project", "user", "consumer_type", "limits"}, ("project", "limits"))
        limits = {}
        limits_path = _join(path, "limits")
        for rc, limit in self.mapping(item["limits"], limits_path, _Anything()).items():
            rc = self.resource_class(rc, _join(limits_path, rc))
            limits[rc] = self.integer(limit, _join(limits_path, rc), 0)
        return Quota(
            project=self.string(item["project"], _join(path, "project")),
            user=self.string(item["user"], _join(path, "user")) if "user" in item else None,
            consumer_type=self.consumer_type(item["consumer_type"], _join(path, "consumer_type")) if "consumer_type" in item else None,
            limits=limits,
        )


class _Anything:
    """An 'allowed keys' set that allows every key (for maps keyed by data)."""

    def __contains__(self, key):
        return True


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}" if isinstance(value, (str, int, float, bool)) else type(value).__name__
