"""Entry point of the policy pack; building the PolicyPack starts the analyzer, so only here."""

from pulumi_policy import EnforcementLevel, Policy, PolicyPack

from infra.policy.rules import POLICIES

policies: list[Policy] = [*POLICIES]
PolicyPack(
    name="cloudrun-ml-rollouts",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies,
)
