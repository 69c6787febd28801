"""The compiled scoring path: the fitted trees as a treelite model, the one-hot step as numpy.

Training exports it only when it scores every held-out and golden row like the scikit-learn
pipeline (pipelines/compiled_export.py), and the artifact records its sha256, so the service may
use it in the pipeline's place. It needs neither scikit-learn nor skops: treelite's own binary
format holds trees and nothing executable, and its predictor compares in double precision, as
scikit-learn does (the default model's scores agree to 2e-15).
"""

from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

COMPILED_FILE = "model.treelite"


class CompiledModel(BaseModel):
    """What `metadata.json` records about the compiled file, and the one-hot step before it:
    the categories of each categorical column, in the model's column order (a category not
    listed encodes as all zeros, as the fitted encoder's `handle_unknown="ignore"` does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = COMPILED_FILE
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    runtime: Literal["treelite"] = "treelite"
    categories: list[list[str]]
    # The largest |probability difference| against the pipeline found when it was exported.
    max_difference: Annotated[float, Field(ge=0)]


class TreeliteScorer:
    """`predict_proba` of the pipeline, from the model matrix (categoricals first, then
    numerics: service/features.py) to class probabilities."""

    def __init__(self, model_bytes: bytes, spec: CompiledModel) -> None:
        import treelite  # pylint: disable=import-outside-toplevel  # only where a model has it

        try:
            self._model = treelite.Model.deserialize_bytes(model_bytes)
        except treelite.TreeliteError as error:
            raise ValueError(str(error)) from error
        self._predict = treelite.gtil.predict
        self._categories = [np.asarray(c, dtype=object) for c in spec.categories]

    def encode(self, matrix: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
        """One-hot columns for the categoricals, then the numerics as they are."""
        width = len(self._categories)
        blocks = [
            (matrix[:, i, None] == categories[None, :]).astype(np.float64)
            for i, categories in enumerate(self._categories)
        ]
        blocks.append(matrix[:, width:].astype(np.float64))
        return np.ascontiguousarray(np.hstack(blocks))

    def predict_proba(self, rows: npt.NDArray[np.object_], /) -> npt.NDArray[np.float64]:
        # One thread: requests are already concurrent, and the rows of one call are few.
        fraud = np.asarray(self._predict(self._model, self.encode(rows), nthread=1), np.float64)
        fraud = fraud.reshape(len(rows), -1)[:, -1]
        return np.column_stack([1.0 - fraud, fraud])
