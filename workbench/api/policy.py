"""Placement's authorisation: oslo.policy with Placement's own default rules.

The rules (38, with their deprecated forms and scope types) are imported
from the installed Placement (``placement.policies.list_rules()``); what
the enforcer does with them follows the configuration, as in Placement:
``[oslo_policy] enforce_new_defaults`` (secure RBAC: reader/member/admin
and service roles) or the deprecated ``role:admin`` rules too. Scope is
always enforced (oslo.policy 6): a system-scoped token is refused by a
project-scoped rule. Each app has its own enforcer, so two apps with
different settings can live in one process (the conformance run relies on it).
"""

from __future__ import annotations

import copy

from oslo_config import cfg
from oslo_policy import policy as oslo_policy
from placement import policies


class PolicyNotAuthorized(Exception):
    """A policy check failed; the API answers 403 with this text."""

    def __init__(self, action: str):
        super().__init__(f"Policy does not allow {action} to be performed.")


def make_enforcer(conf: cfg.ConfigOpts, overrides: dict[str, str] | None = None) -> oslo_policy.Enforcer:
    """An enforcer with Placement's default rules.

    ``overrides`` (``{"placement:traits:list": "@"}``) become the whole rule
    set, as Placement's test PolicyFixture.set_rules makes them: a rule they
    do not name then refuses everyone.
    """
    enforcer = oslo_policy.Enforcer(conf)
    # Placement silences these too: every rule changed its default in Wallaby.
    enforcer.suppress_default_change_warnings = True
    enforcer.suppress_deprecation_warnings = True
    # oslo.policy edits the defaults it is given, hence a copy.
    enforcer.register_defaults(copy.deepcopy(policies.list_rules()))
    enforcer.load_rules()
    if overrides:
        enforcer.set_rules(oslo_policy.Rules.from_dict(overrides), overwrite=True)
    return enforcer


def authorize(enforcer: oslo_policy.Enforcer, context, action: str, target: dict) -> bool:
    """True, or :class:`PolicyNotAuthorized` (also when the token's scope does not fit)."""
    try:
        return enforcer.authorize(action, target, context, do_raise=True, exc=PolicyNotAuthorized, action=action)
    except oslo_policy.InvalidScope:
        raise PolicyNotAuthorized(action) from None
