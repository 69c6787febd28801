"""DeLong's test against its definition, and its false-alarm rate by simulation."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.evaluation.delong import compare_aucs, structural_components


def brute_force_components(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V10 and V01 straight from the definition: every positive against every negative."""
    positives, negatives = scores[labels], scores[~labels]

    def psi(x: float, y: float) -> float:
        return 1.0 if x > y else 0.5 if x == y else 0.0

    v10 = np.array([np.mean([psi(x, y) for y in negatives]) for x in positives])
    v01 = np.array([np.mean([psi(x, y) for x in positives]) for y in negatives])
    return v10, v01


def test_components_match_the_definition_ties_included() -> None:
    rng = np.random.default_rng(3)
    labels = rng.random(80) < 0.3
    scores = np.round(rng.random(80) + labels * 0.4, 1)  # rounded: plenty of ties
    auc, v10, v01 = structural_components(labels, scores)
    expected_v10, expected_v01 = brute_force_components(labels, scores)
    np.testing.assert_allclose(v10, expected_v10)
    np.testing.assert_allclose(v01, expected_v01)
    assert auc == pytest.approx(roc_auc_score(labels, scores))


def test_the_variance_is_delongs_for_a_known_small_case() -> None:
    """Two models on 3 positives and 3 negatives, worked by hand from DeLong's formula."""
    labels = np.array([True, True, True, False, False, False])
    a = np.array([0.9, 0.8, 0.3, 0.4, 0.2, 0.1])
    b = np.array([0.9, 0.5, 0.6, 0.7, 0.2, 0.1])
    test = compare_aucs(labels, a, b, alpha=0.05)
    v10a, v01a = brute_force_components(labels, a)
    v10b, v01b = brute_force_components(labels, b)
    var = (
        np.var(v10a - v10b, ddof=1) / 3 + np.var(v01a - v01b, ddof=1) / 3
    )  # var(X - Y) = var X + var Y - 2 cov(X, Y), per component
    assert test.difference == pytest.approx(8 / 9 - 7 / 9)  # 8 and 7 of 9 pairs in order
    assert test.standard_error == pytest.approx(np.sqrt(var))


def test_two_equally_good_models_fail_about_alpha_of_the_time() -> None:
    """The gate's false-alarm rate: independent noise on one signal, 400 data sets."""
    rng = np.random.default_rng(11)
    alpha, trials, failures = 0.05, 400, 0
    for _ in range(trials):
        labels = rng.random(600) < 0.2
        signal = labels * 1.2
        a = signal + rng.normal(0, 1, 600)
        b = signal + rng.normal(0, 1, 600)
        failures += compare_aucs(labels, a, b, alpha).upper_bound < 0
    rate = failures / trials
    # Binomial(400, 0.05): mean 20, sd 4.4; the band is four standard deviations either side.
    assert 0.05 - 4 * 0.011 <= rate <= 0.05 + 4 * 0.011, rate


def test_a_clearly_worse_model_is_caught() -> None:
    rng = np.random.default_rng(5)
    labels = rng.random(2000) < 0.1
    good = labels * 2.0 + rng.normal(0, 1, 2000)
    worse = labels * 1.0 + rng.normal(0, 1, 2000)
    test = compare_aucs(labels, worse, good, alpha=0.05)
    assert test.upper_bound < 0
    assert test.p_value < 1e-6


@pytest.mark.parametrize(("positives", "negatives"), [(0, 5), (5, 0)])
def test_one_class_only_is_refused(positives: int, negatives: int) -> None:
    labels = np.array([True] * positives + [False] * negatives)
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        structural_components(labels, np.linspace(0, 1, len(labels)))


def test_identical_models_never_differ() -> None:
    labels = np.array([a for a, _ in itertools.product([True, False], range(20))])
    scores = np.linspace(0, 1, 40)
    test = compare_aucs(labels, scores, scores, alpha=0.05)
    assert (test.difference, test.standard_error, test.p_value) == (0.0, 0.0, 1.0)
