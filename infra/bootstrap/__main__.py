"""Entry point Pulumi runs in infra/bootstrap: the one-time setup of projects and GitHub trust."""

from infra.bootstrap.program import bootstrap

bootstrap()
