"""The compiled scoring path: the fitted trees as a treelite model, the one-hot step as numpy.

Training exports it only when it scores every held-out and golden row like the scikit-learn
pipeline (pipelines/compiled_export.py), and the artifact records its sha256, so the service may
use it in the pipeline's place. It needs neither scikit-learn nor skops: treelite's own binary
format holds trees and nothing executable, and its predictor compares in double precision, as
scikit-learn does (the default model's scores agree to 2e-15).
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path
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
    numerics: service/features.py) to class probabilities.

    The trees run in treelite's predictor (gtil), or, given `library`, in the native library
    tl2cgen built from the same file where it runs (service/native.py): about seven times faster
    on a hundred rows, with the same scores."""

    def __init__(
        self, model_bytes: bytes, spec: CompiledModel, library: Path | None = None
    ) -> None:
        # Only where a model has a compiled file. pylint: disable=import-outside-toplevel
        import treelite

        try:
            model = treelite.Model.deserialize_bytes(model_bytes)
        except treelite.TreeliteError as error:
            raise ValueError(str(error)) from error
        self._categories = [np.asarray(c, dtype=object) for c in spec.categories]
        self.runtime = "tl2cgen" if library is not None else "treelite"
        # One thread: requests are already concurrent, and the rows of one call are few.
        self._trees: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.floating]]
        if library is None:
            self._trees = partial(treelite.gtil.predict, model, nthread=1)
        else:
            import tl2cgen  # pylint: disable=import-outside-toplevel  # only with a library

            predictor = tl2cgen.Predictor(library, nthread=1)
            self._trees = lambda rows: predictor.predict(tl2cgen.DMatrix(rows))  # pyright: ignore[reportUnknownMemberType]

    def encode(self, matrix: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
        """One-hot columns for the categoricals, then the numerics as they are."""
        width = len(self._categories)
        blocks = [
            (matrix[:, i, None] == categories[None, :]).astype(np.float64)
            for i, categories in enumerate(self._categories)
        ]
        blocks.append(matrix[:, width:].astype(np.float64))
        return np.ascontiguousarray(np.hstack(blocks))

    def fraud_scores(self, encoded: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The positive class's probability for rows already encoded."""
        return np.asarray(self._trees(encoded), np.float64).reshape(len(encoded), -1)[:, -1]

    def predict_proba(self, rows: npt.NDArray[np.object_], /) -> npt.NDArray[np.float64]:
        fraud = self.fraud_scores(self.encode(rows))
        return np.column_stack([1.0 - fraud, fraud])
