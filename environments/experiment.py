"""An experiment's plan: what was decided before it started, read by the revision and the analysis.

In the cloud it is the experiment keys of the environment's stack file (the revision gets the
name, salt and allocation; the analysis reads the rest); locally the demo builds one.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Metric = Literal["fraud_caught", "correct_decisions"]
# "ab": users split between the models; "interleaving": both rank every review queue together.
Kind = Literal["ab", "interleaving"]


class ExperimentPlan(BaseModel):
    """The metric (higher is better), the challenger's share of users, the error rates, and the
    smallest absolute change on the metric worth detecting, on the baseline it was sized for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    kind: Kind = "ab"
    metric: Metric = "fraud_caught"
    allocation: Annotated[float, Field(gt=0, lt=1)] = 0.5
    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    power: Annotated[float, Field(gt=0.5, lt=1)] = 0.8
    minimum_effect: Annotated[float, Field(gt=0, lt=1)] = 0.05
    baseline: Annotated[float, Field(gt=0, lt=1)] = 0.5

    @model_validator(mode="after")
    def _reachable(self) -> "ExperimentPlan":
        if self.baseline + self.minimum_effect >= 1:
            raise ValueError(
                f"baseline {self.baseline} plus minimum effect {self.minimum_effect} reaches 1: "
                "no rate can rise that far; lower one of them"
            )
        return self
