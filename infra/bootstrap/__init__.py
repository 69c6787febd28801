"""One-time setup: APIs, state bucket, registry, GitHub OIDC trust, deployer accounts."""
