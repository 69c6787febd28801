"""The registry in a bucket: the real client library against a Cloud Storage emulator."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from environments.model_gates import load_gates
from pipelines.bucket_registry import BucketLocation, BucketRegistry, default_client
from pipelines.cli import app
from pipelines.model_location import local_model
from pipelines.model_registry import RegistryError
from pipelines.pinned_model import PinError, PinnedModel, fetch, load_pin
from pipelines.train import TrainResult, compiled_bytes, metadata_for
from service.artifact import read_metadata
from tests.pipelines.fake_gcs import FakeStorage, storage_emulator

BUCKET = "acme-fraud-dev-models"
REGISTRY = f"gs://{BUCKET}/models"


@pytest.fixture
def fake_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStorage]:
    storage = FakeStorage(buckets={BUCKET})
    with storage_emulator(storage) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield storage


def registry(location: str = REGISTRY) -> BucketRegistry:
    return BucketRegistry(default_client(), BucketLocation.parse(location))


def test_published_versions_are_numbered_listed_and_downloaded_verified(
    fake_storage: FakeStorage, trained: TrainResult, tmp_path: Path
) -> None:
    fake_storage.page_size = 1  # the listing spans pages, as a long-lived registry's does
    first = registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    second = registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    assert (str(first), str(second)) == (f"{REGISTRY}/v1", f"{REGISTRY}/v2")
    assert sorted(name for _, name in fake_storage.objects) == [
        "models/v1/metadata.json", "models/v1/model.skops", "models/v1/model.treelite",
        "models/v2/metadata.json", "models/v2/model.skops", "models/v2/model.treelite",
    ]  # fmt: skip
    assert registry().versions() == ["v1", "v2"]
    assert str(registry().download(tmp_path / "latest")) == f"{REGISTRY}/v2"
    assert read_metadata(tmp_path / "latest").version == "v2"
    assert registry(f"{REGISTRY}/v1").download(tmp_path / "first").version == "v1"
    assert (tmp_path / "first" / "model.skops").read_bytes() == trained.model_bytes
    assert (tmp_path / "first" / "model.treelite").read_bytes() == compiled_bytes(trained)


def test_a_number_taken_by_another_publisher_is_never_overwritten(
    fake_storage: FakeStorage, trained: TrainResult
) -> None:
    """A publisher that died after its model (no metadata): unlisted, and its number is skipped.
    A rival that creates the next number between our listing and our upload wins it: our create
    fails its precondition and we take the number after."""
    fake_storage.put(BUCKET, "models/v1/model.skops", b"half a publish")

    def rival(name: str) -> None:
        if name == "models/v2/model.skops":
            fake_storage.put(BUCKET, name, b"the rival's model")

    fake_storage.before_upload = rival
    assert registry().versions() == []
    assert (
        registry()
        .publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
        .version
        == "v3"
    )
    assert fake_storage.objects[BUCKET, "models/v2/model.skops"].data == b"the rival's model"
    assert fake_storage.objects[BUCKET, "models/v1/model.skops"].data == b"half a publish"
    assert registry().versions() == ["v3"]
    published = json.loads(fake_storage.objects[BUCKET, "models/v3/metadata.json"].data)
    assert published["version"] == "v3"


def test_a_failed_publish_leaves_no_listed_version(
    fake_storage: FakeStorage, trained: TrainResult
) -> None:
    fake_storage.status_for["POST models/v1/metadata.json"] = 403  # 5xx: retried for 2 min
    with pytest.raises(RegistryError, match=r"cannot write gs://.*/v1/metadata.json"):
        registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    assert registry().versions() == []
    with pytest.raises(RuntimeError, match="sha256"):  # the service would refuse it: never sent
        registry().publish(
            trained.model_bytes + b"x", metadata_for(trained), compiled_bytes(trained)
        )
    assert "models/v2/model.skops" not in {name for _, name in fake_storage.objects}


def test_a_tampered_or_corrupted_download_is_refused_and_removed(
    fake_storage: FakeStorage, trained: TrainResult, tmp_path: Path
) -> None:
    registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    stored = fake_storage.objects[BUCKET, "models/v1/model.skops"]
    flipped = bytearray(trained.model_bytes)
    flipped[100] ^= 1
    stored.served = bytes(flipped)  # changed in transit: the checksums disagree
    with pytest.raises(RegistryError, match="did not download whole and verified"):
        registry().download(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    fake_storage.put(BUCKET, "models/v1/model.skops", bytes(flipped))  # replaced in the bucket
    with pytest.raises(RegistryError, match="sha256"):
        registry().download(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_errors_name_the_location_and_what_to_do(
    fake_storage: FakeStorage, trained: TrainResult
) -> None:
    with pytest.raises(RegistryError, match="pipelines train --registry gs://"):
        registry().resolve()
    registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    with pytest.raises(RegistryError, match=r"no version 'v4'.*published: v1"):
        registry(f"{REGISTRY}/v4").resolve()
    fake_storage.status_for["GET list"] = 403
    with pytest.raises(RegistryError, match=r"cannot list gs://.*: 403"):
        registry().versions()


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("gs://b-1/models", ("b-1", "models", None)),
        ("gs://b-1/team/models/v12/", ("b-1", "team/models", "v12")),
        ("gs://b-1/models/v1x", ("b-1", "models/v1x", None)),
    ],
)
def test_locations_parse(uri: str, parsed: tuple[str, str, str | None]) -> None:
    location = BucketLocation.parse(uri)
    assert (location.bucket, location.prefix, location.version) == parsed


@pytest.mark.parametrize("uri", ["gs://B/models", "gs://bucket", "gs://bucket/v3", "s3://b/m"])
def test_bad_locations_say_what_a_good_one_is(uri: str) -> None:
    with pytest.raises(RegistryError, match="gs://"):
        BucketLocation.parse(uri)


@pytest.mark.usefixtures("fake_storage")
def test_train_pin_fetch_and_evaluate_through_the_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cloud path a user takes, commands only: the retraining job's `train` (its registry
    from MODEL_REGISTRY), `pin` of the bucket's latest, the image build's `fetch-model`, and
    `evaluate` of a bucket version against another."""
    runner = CliRunner()
    monkeypatch.setenv("MODEL_REGISTRY", REGISTRY)
    for seed in ("7", "8"):
        trained = runner.invoke(app, ["train", "--rows", "3000", "--seed", seed])
        assert trained.exit_code == 0, trained.output
    assert trained.stdout.strip() == f"{REGISTRY}/v2"
    pin_file = tmp_path / "production.json"
    monkeypatch.setattr("pipelines.cli.PIN_FILE", pin_file)  # the champion `evaluate` defaults to
    pinned = runner.invoke(app, ["pin", "--model", REGISTRY, "--pin-file", str(pin_file)])
    assert pinned.exit_code == 0, pinned.output
    assert load_pin(pin_file).uri == f"{REGISTRY}/v2"
    fetched = runner.invoke(
        app, ["fetch-model", "--destination", str(tmp_path / "model"), "--pin-file", str(pin_file)]
    )
    assert fetched.exit_code == 0, fetched.output
    assert read_metadata(tmp_path / "model").version == "v2"

    gates = load_gates().model_dump()
    gates["evaluation"]["rows"] = 5000
    (tmp_path / "gates.yaml").write_text(json.dumps(gates), encoding="utf-8")
    evaluated = runner.invoke(
        app,
        ["evaluate", "--candidate", f"{REGISTRY}/v1", "--gates-file", str(tmp_path / "gates.yaml"),
         "--reports", str(tmp_path / "reports")],
    )  # fmt: skip
    assert evaluated.exit_code in (0, 1), evaluated.output  # the champion is the pin: v2
    verdict = json.loads((tmp_path / "reports" / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["candidate"]["location"] == f"{REGISTRY}/v1"
    assert verdict["champion"]["location"] == f"{REGISTRY}/v2"


@pytest.mark.usefixtures("fake_storage")
def test_a_bucket_model_is_a_temporary_verified_folder(trained: TrainResult) -> None:
    registry().publish(trained.model_bytes, metadata_for(trained), compiled_bytes(trained))
    with local_model(REGISTRY) as model:
        assert model.location == f"{REGISTRY}/v1"
        assert read_metadata(model.folder).version == "v1"
    assert not model.folder.exists()


@pytest.mark.usefixtures("fake_storage")
def test_a_pin_on_a_missing_version_says_so(tmp_path: Path) -> None:
    pinned = PinnedModel(version="v9", uri=f"{REGISTRY}/v9", sha256="0" * 64)
    with pytest.raises(PinError, match="cannot be had: no model in the registry"):
        fetch(pinned, tmp_path / "model")
