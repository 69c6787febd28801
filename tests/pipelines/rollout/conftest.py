"""Fixtures of the real local rollouts: a fast policy, three trained models, a live platform."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from environments.rollout_policy import RolloutPolicy, load_policy
from pipelines.data import Dataset, DataSpec, generate
from pipelines.model_registry import publish
from pipelines.rollout.platform import Candidate
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.train import TrainConfig, compiled_bytes, metadata_for, train

FAST_POLICY = """
rollout:
  steps: [10, 50]
  bake_seconds: 3
  check_interval_seconds: 0.5
  min_requests: 15
  max_extension_seconds: 15
  gates:
    error_rate: {false_alarm_rate: 0.01, max_error_rate: 0.05}
    latency: {max_p99_ms: 1000, max_ratio: 3.0, min_difference_ms: 100}
    scores: {max_ks_distance: 0.15, false_alarm_rate_per_check: 0.0001, min_predictions: 60}
"""
# Scores wait for 60 predictions: the shuffled-label model differs from stable by a KS distance of
# only ~0.3-0.4 on live windows, and at 15-20 candidate predictions (a loaded 2-core machine) the
# significance limit is ~0.5, so a short bake could promote it.
USERS_PER_SECOND = 60.0


def model(tmp: Path, seed: int, shuffle_labels: bool = False) -> Path:
    config = TrainConfig(data=DataSpec(n_rows=3_000, seed=seed), max_iter=40)
    data = generate(config.data)
    if shuffle_labels:  # a model that learned nothing: up, fast, and silently wrong
        labels = np.random.default_rng(seed).permutation(data.labels)
        data = Dataset(data.columns, labels, data.groups, data.spec)
    result = train(config, data)
    return publish(
        result.model_bytes,
        metadata_for(result),
        tmp / f"registry-{seed}-{shuffle_labels}",
        compiled_bytes(result),
    )


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("environments")
    (folder / "local.yaml").write_text(FAST_POLICY)
    return folder


@pytest.fixture(scope="session")
def policy(policy_dir: Path) -> RolloutPolicy:
    return load_policy("local", policy_dir)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("models")
    return {
        "v1": model(tmp, 21),
        "v2": model(tmp, 22),
        "wrong": model(tmp, 23, shuffle_labels=True),
    }


@pytest.fixture
def platform(tmp_path: Path, models: dict[str, Path]) -> Iterator[LocalPlatform]:
    local = LocalPlatform(tmp_path / "platform")
    try:
        local.start(Candidate("v1", models["v1"]))
        yield local
    finally:
        local.shutdown()
