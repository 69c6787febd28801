import numpy as np
import pytest

from pipelines.data import DataSpec, generate, records
from service.schemas import Transaction


def test_same_spec_gives_same_data() -> None:
    """It is deterministic for a seed, and a different seed gives different data."""
    spec = DataSpec(n_rows=500, seed=3)
    assert generate(spec).fingerprint() == generate(spec).fingerprint()
    assert generate(spec).fingerprint() != generate(DataSpec(n_rows=500, seed=4)).fingerprint()


def test_fraud_rate_is_near_the_target() -> None:
    """The label rate lands close to the requested fraud rate."""
    data = generate(DataSpec(n_rows=20_000, fraud_rate=0.03))
    assert abs(float(data.labels.mean()) - 0.03) < 0.005


def test_cross_border_share_is_respected() -> None:
    """Cross-border rows are the requested share, and always differ in country."""
    data = generate(DataSpec(n_rows=10_000, cross_border_share=0.2))
    abroad = data.columns["country"] != data.columns["card_country"]
    assert abs(float(abroad.mean()) - 0.2) < 0.02


def test_drift_knob_shifts_amounts_and_fraud() -> None:
    """Scaling amounts raises the median amount and, through the risk model, the fraud rate."""
    base = generate(DataSpec(n_rows=10_000))
    drifted = generate(DataSpec(n_rows=10_000, amount_scale=3.0))
    median_amount = [float(np.median(d.columns["amount"].astype(float))) for d in (base, drifted)]
    assert median_amount[1] > 2.5 * median_amount[0]
    assert drifted.labels.mean() > base.labels.mean()


def test_records_are_valid_requests() -> None:
    """Every generated row is accepted by the API's request model."""
    data = generate(DataSpec(n_rows=300))
    for body in records(data, range(300)):
        Transaction.model_validate(body)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_rows": 5}, "n_rows=5"),
        ({"fraud_rate": 1.5}, "fraud_rate=1.5"),
        ({"amount_scale": 0}, "amount_scale=0"),
    ],
)
def test_invalid_spec_is_refused(changes: dict[str, float], message: str) -> None:
    """A spec outside its ranges fails at construction, naming the field."""
    with pytest.raises(ValueError, match=message):
        DataSpec(**changes)  # type: ignore[arg-type]
