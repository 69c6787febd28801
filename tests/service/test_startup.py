"""`python -m service` as the container runs it: refuses bad artifacts and settings with exit 2."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.artifact import MODEL_FILE

pytestmark = pytest.mark.integration


def run_service(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_tampered_model_stops_the_start(model_dir: Path, tmp_path: Path) -> None:
    artifact = Path(shutil.copytree(model_dir, tmp_path / "artifact"))
    (artifact / MODEL_FILE).write_bytes((artifact / MODEL_FILE).read_bytes()[:-10])
    done = run_service({"MODEL_DIR": str(artifact), "PORT": "1"})
    assert done.returncode == 2
    assert "refusing to start" in done.stdout
    assert "modified or corrupted" in done.stdout


def test_invalid_settings_stop_the_start(model_dir: Path) -> None:
    done = run_service({"MODEL_DIR": str(model_dir), "ENVIRONMENT": "prod"})
    assert done.returncode == 2
    assert "GIT_SHA must be set" in done.stderr
