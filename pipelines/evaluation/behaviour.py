"""Behavioural and robustness tests, all through the service's own request schema.

Behavioural tests (Ribeiro et al., "Beyond Accuracy", 2020) check what a model should do rather
than how often it is right: directional changes that must not lower the score, changes that must
not move it (invariance), and obvious cases it must get right (minimum functionality).
Robustness: edge and hostile inputs either are refused by the schema, as the API would refuse
them, or get a finite probability; nothing else may happen.
"""

from collections.abc import Callable
from typing import Any, get_args

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from environments.model_gates import BehaviourGate
from pipelines.evaluation.verdict import GateResult
from service.features import encode_records
from service.schemas import EXAMPLE_TRANSACTION, Channel, Country, MerchantCategory, Transaction

Row = dict[str, Any]
Scorer = Callable[[npt.NDArray[np.object_]], npt.NDArray[np.float64]]
COUNTRIES: tuple[str, ...] = get_args(Country)


def _elsewhere(country: str) -> str:
    return COUNTRIES[(COUNTRIES.index(country) + 1) % len(COUNTRIES)]


# Each must not lower a transaction's fraud score (the risk factors of the fraud pattern).
DIRECTIONAL: dict[str, Callable[[Row], Row]] = {
    "ten times the amount": lambda r: r | {"amount": min(r["amount"] * 10, 50_000.0)},
    "abroad, far from home": lambda r: (
        r
        | {
            "country": _elsewhere(r["card_country"]),
            "distance_from_home_km": min(r["distance_from_home_km"] + 3_000, 20_040.0),
        }
    ),
    "at 3 am": lambda r: r | {"hour": 3},
    "ten more card uses today": lambda r: (
        r | {"transactions_last_24h": r["transactions_last_24h"] + 10}
    ),
}
# Minimum functionality: cases nobody would argue about.
OBVIOUSLY_LEGITIMATE: Row = EXAMPLE_TRANSACTION | {
    "amount": 12.5, "account_age_days": 3_000, "transactions_last_24h": 1,
    "distance_from_home_km": 2.0,
}  # fmt: skip
OBVIOUSLY_FRAUD: Row = {
    "amount": 9_000.0, "merchant_category": "jewelry", "country": "NG", "card_country": "US",
    "hour": 3, "account_age_days": 2, "channel": "manual_entry", "transactions_last_24h": 14,
    "distance_from_home_km": 9_000.0,
}  # fmt: skip


def score(scorer: Scorer, rows: list[Row]) -> npt.NDArray[np.float64]:
    """Scores of rows the schema accepts (every row here must be valid)."""
    return scorer(encode_records(rows))


def behaviour_gate(
    scorer: Scorer, rows: list[Row], threshold: float, gate: BehaviourGate
) -> GateResult:
    base = score(scorer, rows)
    figures: dict[str, float] = {}
    problems: list[str] = []
    for name, change in DIRECTIONAL.items():
        moved = score(scorer, [change(r) for r in rows])
        share = float(np.mean(moved >= base - 1e-9))
        figures[f"directional[{name}]"] = share
        if share < gate.min_directional_share:
            problems.append(f"{name} lowered the score of {1 - share:.0%} of transactions")
    domestic = [r for r in rows if r["country"] == r["card_country"]]
    elsewhere = [
        r | {"country": (c := _elsewhere(r["country"])), "card_country": c} for r in domestic
    ]
    shift = float(np.mean(np.abs(score(scorer, elsewhere) - score(scorer, domestic))))
    figures["invariance[another domestic country]"] = shift
    if shift > gate.max_invariance_shift:
        problems.append(
            f"moving a domestic purchase to another country shifts scores by {shift:.3f}"
        )
    legit, fraud = score(scorer, [OBVIOUSLY_LEGITIMATE, OBVIOUSLY_FRAUD])
    figures |= {
        "minimum[obviously legitimate]": float(legit),
        "minimum[obviously fraud]": float(fraud),
    }
    if legit >= threshold:
        problems.append(f"an obviously legitimate purchase scores {legit:.3f} >= {threshold:.3f}")
    if fraud < threshold:
        problems.append(f"an obviously fraudulent purchase scores {fraud:.3f} < {threshold:.3f}")
    thresholds = gate.model_dump(exclude={"rows", "max_perturbation_shift"}) | {
        "threshold": threshold
    }
    reason = "; ".join(problems) or f"{len(DIRECTIONAL)} directional, 1 invariance, 2 obvious cases"
    return GateResult("behaviour", not problems, reason, figures, thresholds)


def _edge_rows() -> list[Row]:
    """Every category, channel and country, and each numeric field at both ends of its range."""
    rows: list[Row] = [
        EXAMPLE_TRANSACTION | {"merchant_category": c} for c in get_args(MerchantCategory)
    ]
    rows += [EXAMPLE_TRANSACTION | {"channel": c} for c in get_args(Channel)]
    rows += [EXAMPLE_TRANSACTION | {"country": c} for c in COUNTRIES]
    for name, field in Transaction.model_fields.items():
        bounds = [m for m in field.metadata if hasattr(m, "ge") or hasattr(m, "le")]
        for bound in bounds:
            for attribute in ("ge", "le"):
                if (value := getattr(bound, attribute, None)) is not None:
                    rows.append(EXAMPLE_TRANSACTION | {name: value})
    return rows


# Inputs the API must refuse before any model sees them.
HOSTILE: dict[str, Row] = {
    "an unseen category": EXAMPLE_TRANSACTION | {"merchant_category": "crypto_exchange"},
    "a missing field": {k: v for k, v in EXAMPLE_TRANSACTION.items() if k != "amount"},
    "not a number": EXAMPLE_TRANSACTION | {"amount": float("nan")},
    "infinity": EXAMPLE_TRANSACTION | {"distance_from_home_km": float("inf")},
    "out of range": EXAMPLE_TRANSACTION | {"hour": 24},
    "a string for a number": EXAMPLE_TRANSACTION | {"amount": "12.50"},
}


def robustness_gate(scorer: Scorer, rows: list[Row], gate: BehaviourGate) -> GateResult:
    problems: list[str] = []
    edges = score(scorer, _edge_rows())
    if not np.all(np.isfinite(edges) & (edges >= 0) & (edges <= 1)):
        problems.append("an edge-of-range transaction got a score outside [0, 1]")
    accepted = []
    for name, row in HOSTILE.items():
        try:
            Transaction.model_validate(row)
            accepted.append(name)
        except ValidationError:
            pass  # refused, with a 422 naming the field, as the API does
    problems += [f"the schema accepts {name}" for name in accepted]
    rng = np.random.default_rng(0)
    factors = 1 + rng.choice([-0.01, 0.01], size=(len(rows), 2))
    perturbed = [
        r | {"amount": min(max(r["amount"] * a, 0.01), 50_000.0),
             "distance_from_home_km": min(r["distance_from_home_km"] * d, 20_040.0)}
        for r, (a, d) in zip(rows, factors, strict=True)
    ]  # fmt: skip
    shift = float(np.mean(np.abs(score(scorer, perturbed) - score(scorer, rows))))
    if shift > gate.max_perturbation_shift:
        problems.append(f"1% changes to amount and distance shift scores by {shift:.3f} on average")
    figures = {
        "edge_rows": float(len(edges)),
        "hostile_inputs_refused": float(len(HOSTILE) - len(accepted)),
        "perturbation_shift": shift,
    }
    thresholds = {"max_perturbation_shift": gate.max_perturbation_shift}
    reason = "; ".join(problems) or (
        f"{len(edges)} edge rows scored in [0, 1], {len(HOSTILE)} hostile inputs refused"
    )
    return GateResult("robustness", not problems, reason, figures, thresholds)
