"""Request and response bodies of the prediction API: the single source of the feature contract."""

from functools import cache
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

MerchantCategory = Literal[
    "grocery",
    "fuel",
    "restaurant",
    "retail",
    "travel",
    "electronics",
    "digital_goods",
    "jewelry",
    "gambling",
]
Channel = Literal["chip", "contactless", "online", "atm", "manual_entry"]
Country = Literal[
    "US", "CA", "MX", "BR", "GB", "IE", "FR", "DE", "ES", "IT", "NL", "PL", "NG", "IN", "JP", "AU"
]

# Request ids the service accepts from X-Request-ID, and feedback must name.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

EXAMPLE_TRANSACTION: JsonDict = {
    "amount": 42.5,
    "merchant_category": "grocery",
    "country": "US",
    "card_country": "US",
    "hour": 14,
    "account_age_days": 730,
    "channel": "chip",
    "transactions_last_24h": 3,
    "distance_from_home_km": 4.2,
}


class WholeNumbers(BaseModel):
    """A body whose integer fields take a JSON number with no fraction, as JSON Schema does."""

    @model_validator(mode="before")
    @classmethod
    def _whole_floats_are_integers(cls, data: Any) -> Any:
        """JSON Schema counts 375.0 as an integer, so the API does too; 3.5 and "3" stay errors.

        Runs for every instance of a batch, so the usual body (no such float) leaves untouched."""
        if not isinstance(data, dict):
            return data
        body = cast(dict[str, Any], data)
        whole = [
            key
            for key in _integer_fields(cls)
            if isinstance(value := body.get(key), float) and value.is_integer()
        ]
        if not whole:
            return body
        return {**body, **{key: int(body[key]) for key in whole}}


@cache
def _integer_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """Names of the model's `int` fields."""
    # pylint cannot infer pydantic's class-level model_fields property.
    # pylint: disable-next=no-member
    return tuple(name for name, info in model.model_fields.items() if info.annotation is int)


class Transaction(WholeNumbers):
    """One card transaction to score.

    Strict types and closed ranges: a wrong type, a value out of range or an unknown field is a
    422 that names the field, never a silent coercion that shifts the model's input distribution.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE_TRANSACTION]},
    )

    amount: Annotated[float, Field(ge=0.01, le=50_000, description="Amount in the card currency.")]
    merchant_category: Annotated[MerchantCategory, Field(description="Merchant category.")]
    country: Annotated[Country, Field(description="ISO country of the merchant.")]
    card_country: Annotated[Country, Field(description="ISO country that issued the card.")]
    hour: Annotated[int, Field(ge=0, le=23, description="Local hour of the transaction.")]
    account_age_days: Annotated[int, Field(ge=0, le=36_500, description="Days since opening.")]
    channel: Annotated[Channel, Field(description="How the card was presented.")]
    transactions_last_24h: Annotated[
        int,
        Field(ge=0, le=1_000, description="Card transactions in the previous 24 hours."),
    ]
    distance_from_home_km: Annotated[
        float, Field(ge=0, le=20_040, description="Distance from the cardholder's home.")
    ]


class BatchRequest(BaseModel):
    """Several transactions scored in one call; the service caps the count (413 above it).

    Validation stops at the first invalid instance: a batch of bad instances costs one error
    report, not one per instance.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    instances: Annotated[list[Transaction], Field(min_length=1, fail_fast=True)]


class Score(BaseModel):
    """The model's verdict on one transaction."""

    fraud_probability: float
    is_fraud: bool
    low_confidence: bool = Field(
        description="The log-odds lie within LOW_CONFIDENCE_LOGIT_MARGIN of the threshold's."
    )


class Prediction(Score):
    """Response to one transaction."""

    request_id: str
    model_version: str
    threshold: float
    experiment: str | None = Field(None, description="The running experiment, if any.")
    variant: str | None = Field(
        None, description="The user's arm (champion or challenger); null without X-User-Id."
    )


class BatchPrediction(BaseModel):
    """Response to a batch, in the order of the request."""

    request_id: str
    model_version: str
    threshold: float
    experiment: str | None = None
    variant: str | None = None
    predictions: list[Score]


class RankRequest(BaseModel):
    """Transactions to order for manual review, riskiest first."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    transactions: Annotated[list[Transaction], Field(min_length=1, fail_fast=True)]


class RankedItem(BaseModel):
    """One place in the review queue: the request's transaction at `item`, and its score."""

    item: int = Field(description="Position of the transaction in the request.")
    fraud_probability: float


class Ranking(BaseModel):
    """The review order. Feedback on a reviewed transaction names this request_id and `item`."""

    request_id: str
    experiment: str | None = None
    ranked: list[RankedItem]


class Feedback(WholeNumbers):
    """The true outcome of one scored transaction, named by the answer's request id."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_extra={"examples": [{"request_id": "4f0c2a9e", "is_fraud": True}]},
    )

    request_id: Annotated[
        str,
        Field(pattern=REQUEST_ID_PATTERN, description="The prediction's request_id."),
    ]
    item: Annotated[
        int, Field(ge=0, le=10_000, description="The transaction's position in a batch; 0 alone.")
    ] = 0
    is_fraud: Annotated[bool, Field(description="Confirmed fraud (true) or cleared (false).")]


class FeedbackReceipt(BaseModel):
    """What was recorded."""

    request_id: str
    item: int
    recorded: bool = True


class Version(BaseModel):
    """What is running: enough to tie a response to a commit, a model and its offline metrics."""

    service: str
    service_version: str
    git_sha: str
    revision: str
    environment: str
    model_version: str
    model_sha256: str
    model_created_at: str
    model_metrics: dict[str, float]
