"""`python -m environments FACT ENV`: facts of an environment that shell commands (the Makefile,
the workflows) need, read from its stack file like everything else.

- secrets-provider: the Cloud KMS key of the stack's secrets;
- gke-cluster: for an environment on an existing GKE cluster, `project=`, `location=` and
  `cluster=` lines (a step's outputs); nothing for any other environment."""

import argparse
import sys
from collections.abc import Sequence

from environments.declared import ContractError
from environments.stack_settings import ENVIRONMENTS, load_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m environments", description=__doc__)
    parser.add_argument("fact", choices=["secrets-provider", "gke-cluster"])
    parser.add_argument("environment", choices=ENVIRONMENTS)
    arguments = parser.parse_args(argv)
    try:
        settings = load_file(arguments.environment)
    except ContractError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.fact == "secrets-provider":
        print(settings.secrets_provider)
    elif settings.platform == "kubernetes" and (cluster := settings.existing_cluster):
        for key in ("project", "location"):
            print(f"{key}={cluster[key]}")
        print(f"cluster={cluster['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
