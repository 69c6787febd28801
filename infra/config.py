"""The only reader of pulumi.Config: the running stack's settings, parsed by the contract's
own parser (environments/stack_settings.py), the same one that reads stack files directly."""

import pulumi

from environments.stack_settings import ALL_KEYS, StackSettings, list_keys, parse


def load() -> StackSettings:
    """The running stack's settings, from pulumi.Config."""
    config, gcp = pulumi.Config(), pulumi.Config("gcp")
    arrays = list_keys()
    values = {key: config.get_object(key) if key in arrays else config.get(key) for key in ALL_KEYS}
    return parse(pulumi.get_stack(), gcp.get("project"), gcp.get("region"), values)
