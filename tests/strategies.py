"""Hypothesis strategies: small random clouds and random allocation-candidate queries.

A *cloud* is a scenario document (the YAML format of :mod:`workbench.scenario`,
as Python data): 1-4 provider trees of depth at most 3 and at most
:data:`MAX_PROVIDERS` providers, with inventories drawn from a small fixed
vocabulary (random total, reserved up to total, min_unit, max_unit,
step_size, allocation_ratio including fractional ones), traits, aggregates
on roots and non-roots, sharing providers (``MISC_SHARES_VIA_AGGREGATE``,
mostly roots, now and then nested) and consumers whose allocations fit.

A *query* is a ``GET /allocation_candidates`` query string (microversion 1.39
syntax) that may use ``{name}`` placeholders for aggregates (``{aggA}``) and
providers (``{cn0_1}``); :func:`workbench.comparison.parity.resolve_placeholders` turns
them into UUIDs. Queries only name resource classes and traits the cloud
knows: the graph engine checks every name up front where Placement only
sometimes does (a documented divergence these tests must not trigger), so
every custom name is declared in the scenario even when no provider uses it.

So that a good share of the queries have candidates, most of a query is aimed
at one *target* tree: resources that tree (or one of its providers, for a
granular group, or a sharing provider) can give in amounts that fit, traits
and aggregates it has, in_tree pointing into it. The rest is drawn from the
whole vocabulary. Every "rare" choice is the non-minimal one, so hypothesis
shrinks towards plain clouds and plain queries.
"""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB", "SRIOV_NET_VF", "VGPU", "CUSTOM_MAGIC")
CUSTOM_CLASSES = ("CUSTOM_MAGIC",)
TRAITS = ("HW_NUMA_ROOT", "HW_CPU_X86_AVX2", "HW_CPU_X86_SSE", "STORAGE_DISK_SSD", "CUSTOM_GOLD", "CUSTOM_SILVER")
CUSTOM_TRAITS = ("CUSTOM_GOLD", "CUSTOM_SILVER")
SHARING_TRAIT = "MISC_SHARES_VIA_AGGREGATE"
# Traits a query may name: the provider vocabulary plus the sharing trait.
QUERY_TRAITS = TRAITS + (SHARING_TRAIT,)
AGGREGATES = ("aggA", "aggB", "aggC")
# Numeric and string (1.33) suffixes.
SUFFIXES = ("1", "2", "_NET", "_ACC")
MAX_PROVIDERS = 12
MAX_INT = 2147483647
# Odds (numerator, denominator) of the rarer cloud shapes.
SHARING_ROOT_ODDS = (1, 3)  # a tree after the first is a sharing provider
NESTED_SHARING_ODDS = (1, 12)  # a child is a sharing provider
LIMIT_ODDS = (1, 8)  # a query has limit=1..3
MAX_DEPTH = 3  # levels in a tree, the root included
CHILDREN = (3, 2, 2, 2)  # most children of a provider at each level


def weighted(choices: dict):
    """A key drawn with probability proportional to its (integer) weight; the
    first key is the one hypothesis shrinks towards."""
    return st.sampled_from(tuple(k for k, w in choices.items() for _ in range(w)))


def chance(numerator: int, denominator: int):
    """True with probability numerator/denominator (shrinks towards False)."""
    return weighted({False: denominator - numerator, True: numerator})


@dataclasses.dataclass(frozen=True)
class Slot:
    """One inventory of one provider, with the room left after the consumers."""

    provider: str
    root: str
    resource_class: str
    min_unit: int
    max_unit: int
    step_size: int
    room: int

    def fitting(self, limit: int = 64) -> list[int]:
        top = min(self.room, self.max_unit, limit)
        return [a for a in range(self.min_unit, top + 1) if a % self.step_size == 0]


@dataclasses.dataclass
class ProviderInfo:
    name: str
    root: str
    traits: tuple[str, ...]
    aggregates: tuple[str, ...]


@dataclasses.dataclass
class Cloud:
    """A generated scenario document plus what the query strategy needs to know."""

    document: dict
    providers: dict[str, ProviderInfo]  # by name, parents first
    slots: list[Slot]
    sharing_providers: list[str]
    nested: bool

    def __repr__(self):  # how hypothesis shows it in a falsifying example
        return f"Cloud(document={self.document!r})"

    @property
    def provider_names(self) -> list[str]:
        return list(self.providers)

    def max_room(self, rc: str) -> int:
        return max([min(s.room, s.max_unit) for s in self.slots if s.resource_class == rc] or [0])

    @property
    def classes_present(self) -> list[str]:
        return [rc for rc in RESOURCE_CLASSES if self.max_room(rc) > 0]

    def tree(self, root: str) -> list[ProviderInfo]:
        return [p for p in self.providers.values() if p.root == root]


# -- clouds ------------------------------------------------------------------------


@st.composite
def inventory(draw):
    """One inventory record: a bare total, or a mapping with non-default fields."""
    total = draw(st.sampled_from((4, 1, 2, 8, 16, 32)))
    if not draw(chance(3, 4)):
        return total
    spec: dict = {"total": total}
    reserved = draw(weighted({"none": 5, "some": 2, "all": 1}))
    if reserved == "some":
        spec["reserved"] = draw(st.integers(1, total))
    elif reserved == "all":
        spec["reserved"] = total  # allowed since 1.26: a parked provider
    min_unit = draw(weighted({1: 4, 2: 1}))
    if min_unit != 1:
        spec["min_unit"] = min_unit
    if draw(chance(1, 3)):
        spec["max_unit"] = draw(st.integers(min_unit, max(min_unit, total + 2)))
    step_size = draw(weighted({1: 4, 2: 1}))
    if step_size != 1:
        spec["step_size"] = step_size
    ratio = draw(weighted({1.0: 5, 1.5: 1, 2.0: 1, 0.5: 1, 16.0: 1, 1.1: 1}))
    if ratio != 1.0:
        spec["allocation_ratio"] = ratio
    return spec if len(spec) > 1 else total


def _inventory_fields(spec) -> dict:
    if isinstance(spec, int):
        spec = {"total": spec}
    return {
        "total": spec["total"],
        "reserved": spec.get("reserved", 0),
        "min_unit": spec.get("min_unit", 1),
        "max_unit": spec.get("max_unit", MAX_INT),
        "step_size": spec.get("step_size", 1),
        "allocation_ratio": spec.get("allocation_ratio", 1.0),
    }


def _capacity(spec) -> int:
    f = _inventory_fields(spec)
    return int((f["total"] - f["reserved"]) * f["allocation_ratio"])


@st.composite
def provider(draw, name: str, *, root: bool, sharing: bool):
    """One provider document (without children)."""
    doc: dict = {"name": name}
    if sharing:
        # A sharing provider usually offers disk (as in real clouds), sometimes more.
        classes = ["DISK_GB"] if draw(chance(3, 4)) else []
        classes += draw(st.lists(st.sampled_from(RESOURCE_CLASSES), max_size=2, unique=True))
        classes = list(dict.fromkeys(classes))
    elif root:
        common = ("VCPU", "MEMORY_MB", "DISK_GB")
        at_least = 0 if draw(chance(1, 5)) else 1  # most compute roots have some inventory
        classes = draw(
            st.lists(st.sampled_from(common + RESOURCE_CLASSES), min_size=at_least, max_size=3, unique=True)
        )
    else:
        common = ("VCPU", "SRIOV_NET_VF", "VGPU", "MEMORY_MB")
        classes = draw(st.lists(st.sampled_from(common + RESOURCE_CLASSES), max_size=2, unique=True))
    if classes:
        doc["inventories"] = {rc: draw(inventory()) for rc in classes}
    traits = draw(st.lists(st.sampled_from(TRAITS), max_size=2, unique=True))
    if sharing:
        traits.append(SHARING_TRAIT)
    if traits:
        doc["traits"] = traits
    # Aggregates: sharing providers nearly always have one (else they share with
    # nobody), roots often, nested providers now and then.
    if sharing:
        at_least = 0 if draw(chance(1, 8)) else 1
        aggregates = draw(st.lists(st.sampled_from(AGGREGATES), min_size=at_least, max_size=2, unique=True))
    elif root:
        aggregates = draw(st.lists(st.sampled_from(AGGREGATES), max_size=2, unique=True))
    elif draw(chance(1, 4)):
        aggregates = [draw(st.sampled_from(AGGREGATES))]
    else:
        aggregates = []
    if aggregates:
        doc["aggregates"] = aggregates
    return doc


@st.composite
def clouds(draw) -> Cloud:
    n_trees = draw(weighted({1: 2, 2: 3, 3: 3, 4: 2}))
    budget = MAX_PROVIDERS
    documents: list[dict] = []
    infos: dict[str, ProviderInfo] = {}
    flat: list[dict] = []  # every provider document, parents first
    sharing_names: list[str] = []
    nested = False

    def add(doc: dict, root: str) -> None:
        flat.append(doc)
        infos[doc["name"]] = ProviderInfo(
            doc["name"], root, tuple(doc.get("traits", ())), tuple(doc.get("aggregates", ()))
        )
        if SHARING_TRAIT in doc.get("traits", ()):
            sharing_names.append(doc["name"])

    def children_of(parent: dict, root: str, level: int) -> None:
        """Give ``parent`` (at ``level``, the root being 1) up to CHILDREN[level - 1] children."""
        nonlocal budget
        if level >= MAX_DEPTH or budget <= 0:
            return
        children = []
        for i in range(draw(st.integers(0, min(CHILDREN[level - 1], budget)))):
            # Now and then a nested sharing provider.
            sharing = draw(chance(*NESTED_SHARING_ODDS))
            child = draw(provider(f"{parent['name']}_{i}", root=False, sharing=sharing))
            budget -= 1
            add(child, root)
            children.append(child)
            children_of(child, root, level + 1)
            if budget <= 0:
                break
        if children:
            parent["children"] = children

    for t in range(n_trees):
        if budget <= 0:
            break
        # The first tree is always a compute tree; later ones may be sharing roots.
        is_sharing_root = t > 0 and draw(chance(*SHARING_ROOT_ODDS))
        name = f"ss{t}" if is_sharing_root else f"cn{t}"
        root = draw(provider(name, root=True, sharing=is_sharing_root))
        budget -= 1
        add(root, name)
        documents.append(root)
        if not is_sharing_root or draw(chance(1, 3)):  # sharing roots are mostly flat
            children_of(root, name, 1)
        nested = nested or "children" in root

    # Existing consumers, with allocations that fit (the parser rejects overcommit).
    inventories = [
        (p["name"], rc, _inventory_fields(spec), _capacity(spec))
        for p in flat
        for rc, spec in p.get("inventories", {}).items()
    ]
    used: dict[tuple[str, str], int] = {}
    consumers = []
    if inventories:
        for c in range(draw(weighted({0: 2, 1: 2, 2: 1, 3: 1}))):
            allocations: dict[str, dict[str, int]] = {}
            picks = draw(st.lists(st.integers(0, len(inventories) - 1), min_size=1, max_size=3, unique=True))
            for index in picks:
                name, rc, fields, capacity = inventories[index]
                room = capacity - used.get((name, rc), 0)
                top = min(room, fields["max_unit"])
                fitting = [a for a in range(fields["min_unit"], top + 1) if a % fields["step_size"] == 0]
                if not fitting:
                    continue
                # Mostly a little, sometimes everything that is left.
                amount = fitting[-1] if draw(chance(1, 4)) else draw(st.sampled_from(fitting[:4]))
                used[name, rc] = used.get((name, rc), 0) + amount
                allocations.setdefault(name, {})[rc] = amount
            if allocations:
                consumers.append({"name": f"vm{c}", "project": "p1", "user": "u1", "allocations": allocations})

    slots = [
        Slot(
            name,
            infos[name].root,
            rc,
            fields["min_unit"],
            fields["max_unit"],
            fields["step_size"],
            capacity - used.get((name, rc), 0),
        )
        for name, rc, fields, capacity in inventories
    ]
    document = {
        "name": "generated",
        "resource_classes": list(CUSTOM_CLASSES),
        "traits": list(CUSTOM_TRAITS),
        "providers": documents,
    }
    if consumers:
        document["consumers"] = consumers
    return Cloud(document, infos, slots, sharing_names, nested)


# -- queries -----------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """What most of one query is aimed at."""

    root: str
    providers: list[ProviderInfo]  # the tree's providers
    slots: list[Slot]  # the inventories of the tree and of the sharing providers serving it


@st.composite
def targets(draw, cloud: Cloud) -> Target:
    roots = sorted({s.root for s in cloud.slots}) or [next(iter(cloud.providers))]
    root = draw(st.sampled_from(roots))
    tree = cloud.tree(root)
    aggregates = {a for p in tree for a in p.aggregates}
    # Sharing providers that serve this tree (and, rarely, any other one).
    sharing = {
        name
        for name in cloud.sharing_providers
        if aggregates & set(cloud.providers[name].aggregates) or draw(chance(1, 6))
    }
    slots = [s for s in cloud.slots if s.root == root or s.provider in sharing]
    return Target(root, tree, slots)


@st.composite
def any_amount(draw, cloud: Cloud, rc: str) -> int:
    """Small amounts mostly; now and then up to (and past) the largest room."""
    top = max(cloud.max_room(rc), 1)
    if draw(chance(1, 4)):
        return draw(st.integers(1, top + 1))
    return draw(st.integers(1, 2))


@st.composite
def resources_value(draw, cloud: Cloud, target: Target, max_classes: int, provider: str | None = None):
    """``RC:N,...`` and the providers aimed at: mostly what the target tree
    can give (for a granular group: what ``provider`` can give), in amounts
    that fit."""
    pool = [s for s in target.slots if provider is None or s.provider == provider]
    if pool and not draw(chance(1, 8)):
        chosen = draw(
            st.lists(st.sampled_from(pool), min_size=1, max_size=max_classes, unique_by=lambda s: s.resource_class)
        )
        shared = [s for s in pool if s.provider in cloud.sharing_providers and s.root != target.root]
        if provider is None and shared and draw(chance(1, 3)):
            # Make a sharing provider of another tree one of the choices.
            first = draw(st.sampled_from(shared))
            chosen = [first] + [s for s in chosen if s.resource_class != first.resource_class][: max_classes - 1]
        parts = []
        for slot in chosen:
            fitting = slot.fitting()
            if fitting and not draw(chance(1, 10)):
                n = draw(st.sampled_from(fitting[:3]))
            else:
                n = draw(any_amount(cloud, slot.resource_class))
            parts.append(f"{slot.resource_class}:{n}")
        return ",".join(parts), [cloud.providers[s.provider] for s in chosen]
    present = cloud.classes_present
    # Mostly classes that some provider has; sometimes any class of the vocabulary.
    classes_pool = st.sampled_from(present) if present and not draw(chance(1, 4)) else st.sampled_from(RESOURCE_CLASSES)
    classes = draw(st.lists(classes_pool, min_size=1, max_size=max_classes, unique=True))
    return ",".join(f"{rc}:{draw(any_amount(cloud, rc))}" for rc in classes), list(target.providers)


@st.composite
def trait_name(draw, own: tuple[str, ...]) -> str:
    """A trait the target has (when it has any), else any known trait."""
    if own and not draw(chance(1, 3)):
        return draw(st.sampled_from(own))
    return draw(st.sampled_from(QUERY_TRAITS))


@st.composite
def required_value(draw, own: tuple[str, ...]) -> str:
    """``T1,!T2`` (all of / none of) or ``in:T1,T2`` (any of)."""
    if draw(chance(1, 4)):
        names = draw(st.lists(trait_name(own), min_size=2, max_size=3, unique=True))
        return "in:" + ",".join(names)
    names = draw(st.lists(trait_name(own), min_size=1, max_size=2, unique=True))
    # A forbidden trait: mostly one the target lacks, sometimes any.
    others = [t for t in QUERY_TRAITS if t not in own]
    return ",".join(
        "!" + draw(st.sampled_from(others if others and not draw(chance(1, 3)) else QUERY_TRAITS))
        if draw(chance(1, 3))
        else n
        for n in names
    )


@st.composite
def aggregate_name(draw, own: tuple[str, ...]) -> str:
    if own and not draw(chance(1, 3)):
        return draw(st.sampled_from(own))
    return draw(st.sampled_from(AGGREGATES))


@st.composite
def member_of_value(draw, own: tuple[str, ...]) -> str:
    """``{agg}``, ``in:{a},{b}``, ``!{agg}`` or ``!in:{a},{b}``."""
    form = draw(weighted({"one": 3, "in": 2, "not": 2, "not_in": 1}))
    if form == "one":
        return "{%s}" % draw(aggregate_name(own))
    if form == "not":
        return "!{%s}" % draw(st.sampled_from(AGGREGATES))
    if form == "in":
        listed = draw(st.lists(aggregate_name(own), min_size=2, max_size=3, unique=True))
    else:
        listed = draw(st.lists(st.sampled_from(AGGREGATES), min_size=2, max_size=3, unique=True))
    return ("in:" if form == "in" else "!in:") + ",".join("{%s}" % a for a in listed)


@st.composite
def group_filters(
    draw, cloud: Cloud, target: Target, suffix: str, resourceless: bool, aimed: list[ProviderInfo]
) -> list[tuple[str, str]]:
    """requiredS / member_ofS / in_treeS for one group (repeats allowed), with
    traits and aggregates mostly those of the ``aimed`` providers (and, for
    member_of, their roots: an aggregate on the root spans the tree)."""
    own_traits = tuple(sorted({t for p in aimed for t in p.traits}))
    roots = [cloud.providers[p.root] for p in aimed] if not suffix else []
    own_aggregates = tuple(sorted({a for p in aimed + roots for a in p.aggregates}))
    pairs = []
    # Filters on what the aimed providers have are the likelier ones.
    if resourceless:
        n_required = draw(weighted({1: 2, 0: 1, 2: 1}) if own_traits else weighted({0: 3, 1: 1}))
    else:
        n_required = draw(weighted({0: 14, 1: 4, 2: 2}) if own_traits else weighted({0: 17, 1: 2, 2: 1}))
    for _ in range(n_required):
        pairs.append((f"required{suffix}", draw(required_value(own_traits))))
    n_member_of = draw(weighted({0: 16, 1: 3, 2: 1}) if own_aggregates else weighted({0: 18, 1: 2}))
    if resourceless and not n_required:
        n_member_of = max(n_member_of, 1)
    for _ in range(n_member_of):
        pairs.append((f"member_of{suffix}", draw(member_of_value(own_aggregates))))
    if draw(chance(1, 14)):
        where = draw(weighted({"target": 12, "anywhere": 4, "nowhere": 1}))
        if where == "nowhere":
            name = "no_such_provider"  # resolves to a well-formed UUID of no provider
        else:
            name = draw(st.sampled_from([p.name for p in target.providers] if where == "target" else cloud.provider_names))
        pairs.append((f"in_tree{suffix}", "{%s}" % name))
    return pairs


# Bad parameters, each a 400 in Placement (the graph engine must give the same
# error code): bad syntax, contradictions, misplaced or repeated parameters.
MALFORMED = (
    ("resources", "VCPU:0"),
    ("resources", "VCPU"),
    ("resources", ""),
    ("resources1", "VCPU:x"),
    ("required", ""),
    ("required", "!"),
    ("required", "in:HW_NUMA_ROOT,!CUSTOM_GOLD"),
    ("required", "CUSTOM_GOLD,!CUSTOM_GOLD"),
    ("member_of", "{aggA},{aggB}"),
    ("member_of", "in:"),
    ("member_of", "in:{aggA},!{aggB}"),
    ("member_of", "not-a-uuid"),
    ("in_tree", "not-a-uuid"),
    ("group_policy", "bogus"),
    ("limit", "0"),
    ("limit", "-1"),
    ("root_required", "in:HW_NUMA_ROOT,CUSTOM_GOLD"),
    ("root_required", "HW_NUMA_ROOT,!HW_NUMA_ROOT"),
    ("same_subtree", ",1"),
    ("same_subtree", "_NO_SUCH_GROUP"),
    ("required_ORPHAN", "HW_NUMA_ROOT"),
    ("resources!", "VCPU:1"),
    ("bogus", "1"),
)


@dataclasses.dataclass
class Query:
    """A generated query string (with placeholders) and the features it uses."""

    text: str
    features: frozenset[str]

    def __repr__(self):  # how hypothesis shows it in a falsifying example
        return repr(self.text)


def _features(params: list[tuple[str, str]]) -> set[str]:
    keys = [k for k, _ in params]
    features = set()
    if any(k.startswith("required") for k in keys):
        features.add("required")
    if any(v.startswith("in:") for k, v in params if k.startswith("required")):
        features.add("any_traits")
    if any("!" in v for k, v in params if k.startswith("required")):
        features.add("forbidden_trait")
    if any(k.startswith("member_of") for k in keys):
        features.add("member_of")
    if any(v.startswith("!") for k, v in params if k.startswith("member_of")):
        features.add("forbidden_aggregate")
    if any(k.startswith("in_tree") for k in keys):
        features.add("in_tree")
    if len(keys) != len(set(keys)):
        features.add("repeated_param")
    if any(SHARING_TRAIT in v for _, v in params):
        features.add("names_sharing_trait")
    return features


@st.composite
def queries(draw, cloud: Cloud) -> Query:
    target = draw(targets(cloud))
    features: set[str] = set()
    groups: list[list[tuple[str, str]]] = []
    n_granular = draw(weighted({0: 9, 1: 5, 2: 4, 3: 2}))
    with_unsuffixed = n_granular == 0 or not draw(chance(1, 5))
    if with_unsuffixed:
        value, aimed = draw(resources_value(cloud, target, 3))
        pairs = [("resources", value)]
        pairs += draw(group_filters(cloud, target, "", resourceless=False, aimed=aimed))
        groups.append(pairs)
    suffixes = list(draw(st.permutations(SUFFIXES))[:n_granular])
    # A resourceless group (requiredS / member_ofS only) is valid only when
    # named in same_subtree; keep at least one group with resources.
    empties = [draw(chance(1, 4)) for _ in suffixes]
    if empties and all(empties) and not with_unsuffixed:
        empties[-1] = False
    resourceless = [s for s, empty in zip(suffixes, empties) if empty]
    with_resources = sorted({s.provider for s in target.slots})
    for suffix, empty in zip(suffixes, empties):
        if empty:
            # Usually aimed at an ancestor (same_subtree wants one provider
            # above the others): the root, else any provider of the tree.
            tree = target.providers
            with_traits = [p for p in tree if p.traits] or tree
            aimed = tree[0] if tree[0].traits and not draw(chance(1, 3)) else draw(st.sampled_from(with_traits))
            groups.append(draw(group_filters(cloud, target, suffix, resourceless=True, aimed=[aimed])))
        else:
            provider = draw(st.sampled_from(with_resources)) if with_resources else None
            value, aimed = draw(resources_value(cloud, target, 2, provider))
            pairs = [(f"resources{suffix}", value)]
            pairs += draw(group_filters(cloud, target, suffix, resourceless=False, aimed=aimed[:1]))
            groups.append(pairs)
    # Placement handles the groups in query order, so vary the order.
    order = draw(st.permutations(range(len(groups))))
    params = [pair for index in order for pair in groups[index]]

    if suffixes:
        features.add("granular")
        if len(suffixes) > 1:
            policy = draw(weighted({"isolate": 6, "none": 6, None: 1}))  # no policy: a 400
        else:
            policy = draw(weighted({None: 2, "isolate": 1, "none": 1}))
        if policy:
            params.append(("group_policy", policy))
            features.add(f"group_policy={policy}")
    if resourceless:
        features.add("resourceless")
    if suffixes and (resourceless or draw(chance(1, 4))):
        # same_subtree: every resourceless group plus some others (usually >= 2 groups).
        others = [s for s in suffixes if s not in resourceless]
        extra = draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others))) if others else []
        members = list(dict.fromkeys(resourceless + extra))
        if len(members) < 2 and others:
            members = list(dict.fromkeys(members + others[:1]))
        if resourceless and draw(chance(1, 20)):
            members = [s for s in members if s != resourceless[0]] or others[:1]  # a 400
        if members:
            params.append(("same_subtree", ",".join(members)))
            features.add("same_subtree")
            if len(suffixes) > 2 and draw(chance(1, 5)):
                params.append(("same_subtree", ",".join(draw(st.permutations(suffixes))[:2])))
    if draw(chance(1, 10)):
        root_traits = cloud.providers[target.root].traits
        names = draw(st.lists(trait_name(root_traits), min_size=1, max_size=2, unique=True))
        params.append(("root_required", ",".join(("!" + n) if draw(chance(1, 3)) else n for n in names)))
        features.add("root_required")
    if draw(chance(*LIMIT_ODDS)):
        params.append(("limit", str(draw(st.integers(1, 3)))))
        features.add("limit")
    if draw(chance(1, 25)):
        # A malformed or contradictory parameter: both engines must give the same 400.
        key, value = draw(st.sampled_from(MALFORMED))
        params.insert(draw(st.integers(0, len(params))), (key, value))
        features.add("malformed")
    features |= _features(params)
    # Values are plain [A-Za-z0-9_:,!{}-] (placeholders become UUIDs), so they
    # need no URL encoding and the query stays readable.
    return Query("&".join(f"{k}={v}" for k, v in params), frozenset(features))


def cloud_and_queries(min_queries: int = 3, max_queries: int = 8):
    """A cloud and several distinct queries about it (one Neo4j load serves them all)."""
    return clouds().flatmap(
        lambda cloud: st.tuples(
            st.just(cloud),
            st.lists(queries(cloud), min_size=min_queries, max_size=max_queries, unique_by=lambda q: q.text),
        )
    )
