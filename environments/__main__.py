"""`python -m environments secrets-provider ENV`: facts of an environment that shell commands
(the Makefile) need, read from its stack file like everything else."""

import argparse
import sys
from collections.abc import Sequence

from environments.declared import ContractError
from environments.stack_settings import ENVIRONMENTS, load_file


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m environments", description=__doc__)
    parser.add_argument("fact", choices=["secrets-provider"])
    parser.add_argument("environment", choices=ENVIRONMENTS)
    arguments = parser.parse_args(argv)
    try:
        settings = load_file(arguments.environment)
    except ContractError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(settings.secrets_provider)
    return 0


if __name__ == "__main__":
    sys.exit(main())
