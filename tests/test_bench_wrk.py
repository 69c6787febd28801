"""The benchmark's wrk runner: its result line parsed, its bodies file one body per line."""

from pathlib import Path

import pytest

from benchmarks.wrk import MARKER, WrkError, parse_result, write_bodies


def test_the_result_line_is_read_among_wrk_output() -> None:
    output = (
        "Running 4s test @ http://127.0.0.1:8000\n  1 threads and 64 connections\n"
        f'{MARKER}{{"requests":8000,"duration_us":4000000,"errors":3,"p50_us":1500,'
        '"p99_us":42000}\n'
    )
    result = parse_result(output, client_cpu_s=0.8)
    assert (result.requests, result.errors) == (8000, 3)
    assert result.per_second == 2000
    assert (result.p50_ms, result.p99_ms) == (1.5, 42.0)
    assert result.client_cpu_share == pytest.approx(0.2)


def test_output_without_a_result_line_is_an_error() -> None:
    with pytest.raises(WrkError, match="no result line"):
        parse_result("unable to connect to 127.0.0.1:8000 Connection refused\n", 0.0)


def test_bodies_are_written_one_per_line_and_a_newline_inside_one_is_refused(
    tmp_path: Path,
) -> None:
    path = write_bodies(tmp_path / "bodies", [b'{"a":1}', b'{"b":2}'])
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n'
    with pytest.raises(ValueError, match="contains a newline"):
        write_bodies(tmp_path / "other", [b'{\n"a":1}'])
