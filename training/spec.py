"""The scoring spec of a fitted candidate: what serving needs besides the model.

Read off the fitted objects here, in training, so that serving never looks inside
scikit-learn's calibration or LightGBM's categorical handling.
"""

from __future__ import annotations

from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from leadscore.config import ScoreSettings
from leadscore.scoring.estimators import CategoryColumns
from leadscore.scoring.explain import lightgbm_pipeline
from leadscore.scoring.spec import Calibration, FeatureSet, ModelShape, RuleSet, ScoringSpec, TierTable


def calibration_of(model: BaseEstimator) -> Calibration | None:
    """Platt's parameters of a single sigmoid calibration (training.experiment.calibrate);
    None for any other wrapper."""
    if not (isinstance(model, CalibratedClassifierCV) and model.method == "sigmoid"
            and len(model.calibrated_classifiers_) == 1):
        return None
    calibrators = model.calibrated_classifiers_[0].calibrators
    if len(calibrators) != 1:
        return None
    return Calibration(a=float(calibrators[0].a_), b=float(calibrators[0].b_))


def levels_of(model: BaseEstimator) -> dict[str, list[str]]:
    """The categorical levels a LightGBM pipeline fixed at fit time, in code order."""
    inner = lightgbm_pipeline(model)
    if isinstance(inner, Pipeline) and isinstance(inner[0], CategoryColumns):
        return {column: [str(level) for level in levels] for column, levels in inner[0].categories_.items()}
    return {}


def _lightgbm(model: BaseEstimator) -> LGBMClassifier | None:
    inner = lightgbm_pipeline(model)
    return None if inner is None else inner[-1]


def _depth(node: dict) -> int:
    if "left_child" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def model_shape(model: BaseEstimator) -> ModelShape:
    """What serving cost depends on: LightGBM's trees, leaves and depth (empty for the others)."""
    lightgbm = _lightgbm(model)
    if lightgbm is None:
        return ModelShape()
    booster = lightgbm.booster_
    trees = booster.dump_model()["tree_info"]
    return ModelShape(trees=booster.num_trees(), num_leaves=lightgbm.num_leaves,
                      max_depth_seen=max((_depth(tree["tree_structure"]) for tree in trees), default=0))


def scoring_spec(kind: str, model: BaseEstimator, features: FeatureSet, rules: RuleSet | None,
                 tiers: TierTable, score: ScoreSettings, **about: object) -> ScoringSpec:
    """The spec of a fitted, calibrated candidate; `about` holds what the experiment knows of its
    data (horizon_days, feature_service, test_window, excluded_by_leakage_guard, extra)."""
    return ScoringSpec(model_kind=kind, features=features, levels=levels_of(model),
                       calibration=calibration_of(model), rules=rules, tiers=tiers, score=score,
                       shape=model_shape(model), **about)
