"""A feature frame as the models take it, the same in training and in serving."""

from __future__ import annotations

import pandas as pd

from leadscore.scoring.spec import FeatureSet, ScoringSpec


def prepare(frame: pd.DataFrame, features: FeatureSet) -> pd.DataFrame:
    """The model input: numerics as floats (missing = NaN, counts missing = 0),
    categoricals as objects (missing = None)."""
    out = pd.DataFrame(index=frame.index)
    for column in features.numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        if column in features.zero_when_missing:
            out[column] = out[column].fillna(0.0)
    for column in features.categorical:
        out[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return out


def prepare_for(frame: pd.DataFrame, spec: ScoringSpec) -> pd.DataFrame:
    """`prepare` for a model version: with a stacked model's offset column (its people's chance)
    after its features."""
    X = prepare(frame, spec.features)
    if spec.offset is not None:
        X[spec.offset.column] = pd.to_numeric(frame[spec.offset.column], errors="coerce").astype(float)
    return X
