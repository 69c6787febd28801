"""The production model is pinned by hash; only exactly that artifact is fetched for an image."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.pinned_model import PinError, fetch, load_pin, pin


def test_a_pinned_model_is_fetched_and_verified(model_dir: Path, tmp_path: Path) -> None:
    pinned = pin(str(model_dir), tmp_path / "production.json")
    assert load_pin(tmp_path / "production.json") == pinned
    folder = fetch(pinned, tmp_path / "model")
    assert (folder / "model.skops").read_bytes() == (model_dir / "model.skops").read_bytes()


def test_an_artifact_that_is_not_the_pinned_one_never_replaces_the_last_good_copy(
    model_dir: Path, tmp_path: Path
) -> None:
    pinned = pin(str(model_dir), tmp_path / "production.json")
    good = fetch(pinned, tmp_path / "model")
    before = (good / "metadata.json").read_bytes()
    other = pinned.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(PinError, match="the pin names"):
        fetch(other, tmp_path / "model")
    tampered = tmp_path / "registry-copy"
    shutil.copytree(model_dir, tampered)
    with (tampered / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PinError, match="does not verify"):
        fetch(pinned.model_copy(update={"uri": str(tampered)}), tmp_path / "model")
    assert (good / "metadata.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model-")], "no leftovers"


def test_no_pin_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(PinError, match="python -m pipelines pin --model"):
        load_pin(tmp_path / "production.json")
    (tmp_path / "production.json").write_text(json.dumps({"version": "v1"}), encoding="utf-8")
    with pytest.raises(PinError, match="is not a model pin"):
        load_pin(tmp_path / "production.json")


def test_fetch_model_without_a_pin_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["fetch-model", "--destination", str(tmp_path / "model"),
         "--pin-file", str(tmp_path / "absent.json")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "pin the model production should serve" in " ".join(result.output.split())
