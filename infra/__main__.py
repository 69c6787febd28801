"""Entry point Pulumi runs (`main: infra/` in Pulumi.yaml): the environment named by the stack."""

from infra.stack import deploy

deploy()
