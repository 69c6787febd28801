"""Maximal hostile request bodies (1 MB at most): the tests and `make bench-hostile` send these."""

import orjson

from service.schemas import EXAMPLE_TRANSACTION

BODY_BYTES = 1024 * 1024


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def fill(prefix: bytes, unit: bytes, suffix: bytes, size: int = BODY_BYTES) -> bytes:
    """`prefix` + as many `unit`s as fit in `size` bytes + `suffix`: a maximal body."""
    count = (size - len(prefix) - len(suffix)) // (len(unit) + 1)
    return prefix + b",".join([unit] * count) + suffix


def many_keys(size: int = BODY_BYTES) -> bytes:
    """One object with as many distinct keys as fit in `size` bytes."""
    count = size // len(b'"k100000":0,')
    return orjson.dumps({f"k{i}": 0 for i in range(count)})


HOSTILE = {
    "a megabyte of empty objects": fill(b'{"instances":[', b"{}", b"]}"),
    "a megabyte of keys": many_keys(),
    "a megabyte of numbers": fill(b'{"amount":[', b"0", b"]}"),
    "the widest batch the limits let through": orjson.dumps(
        {"instances": [{f"k{i}": 0 for i in range(62)}] * 1_000}
    ),
    "a full batch, every instance wrong": orjson.dumps(
        {"instances": [dict.fromkeys(EXAMPLE_TRANSACTION, "x")] * 1_000}
    ),
    "nesting at orjson's limit": nested(1_023),
    "lone surrogates": b'{"\\ud800":"\\udfff"}',
}
