"""Rolling-origin backtest: how a model does when it is refitted as time goes on.

The rows are ordered by time. After an initial part (`initial_share` of the time span, or of
the rows), the rest is cut into periods (every `period_days`, or every `period_rows` rows).
Before each period the model is fitted on the rows before it (all of them: an expanding
window; or the latest `window_days` / `window_rows`: a sliding one), calibrated on the latest
`validation_share` of those, and scores the period. The periods' predictions are pooled.
Beside it, the same model fitted once on the initial part scores every period: train-once.

No period ever trains on its own rows or later ones: a row trains a period only if its time is
before the period's first time minus `gap` (the label horizon for the lead model: a snapshot's
label is only known a horizon later; 0 for a flat table unless given).

Each fit runs the experiment's own steps on its window alone (leakage guard, candidate,
early stopping, calibration), so what later rows hold never decides what a period's model uses.
The steps (`folds`, `fit_window`, `run_backtest`) are pure; `log_backtest` writes the MLflow run.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

import mlflow
from leadscore.config import BacktestSettings, Settings
from leadscore.scoring.metrics import metrics
from leadscore.scoring.prepare import prepare
from leadscore.scoring.spec import FeatureSet
from leadscore.training import register
from leadscore.training.dataset import Split
from leadscore.training.experiment import (
    Experiment,
    Inputs,
    calibrate,
    candidates,
    fit_model,
    guarded_inputs,
    usable_rules,
)

FIGURES = ("roc_auc", "pr_auc", "ece")


@dataclass(frozen=True)
class Fold:
    """One period: its rows to score, and the rows its model learns from (positions in the
    time-ordered frame)."""

    start: pd.Timestamp
    end: pd.Timestamp  # the period's last time
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class PeriodResult:
    start: str
    end: str
    train_rows: int
    train_until: str  # the latest time a training row of this period has
    test_rows: int
    positives: int
    rolling: dict[str, float] | None  # None: the period has one class only
    train_once: dict[str, float] | None


@dataclass(frozen=True)
class Backtest:
    model: str
    window: str
    train_once_rows: int
    periods: list[PeriodResult]
    pooled: dict[str, float]
    train_once: dict[str, float]

    def as_json(self) -> dict:
        return {"model": self.model, "window": self.window, "pooled": self.pooled,
                "train_once": self.train_once, "train_once_rows": self.train_once_rows,
                "periods": [asdict(period) for period in self.periods]}


# ---- periods -----------------------------------------------------------------------------------


def _starts(times: pd.Series, options: BacktestSettings) -> list[int]:
    """Positions where each period begins (every period_rows rows, else every period_days); rows
    at a period's first time belong to it, whichever row the cut fell on."""
    n = len(times)
    cuts: Sequence[int]
    if options.period_rows:
        cuts = range(int(n * options.initial_share), n, options.period_rows)
    else:
        origin = times.iloc[0] + options.initial_share * (times.iloc[-1] - times.iloc[0])
        step = pd.Timedelta(days=options.period_days)
        edges = [origin + k * step for k in range(math.ceil((times.iloc[-1] - origin) / step) + 1)]
        cuts = [i for i in np.searchsorted(times, edges, side="left") if i < n]
    return sorted({int(np.searchsorted(times, times.iloc[i], side="left")) for i in cuts})


def training_rows(times: pd.Series, start: pd.Timestamp, gap: pd.Timedelta,
                  options: BacktestSettings) -> np.ndarray:
    """Positions of the rows a period starting at `start` may learn from."""
    rows = np.flatnonzero((times < start - gap).to_numpy())
    if options.window == "sliding" and options.window_rows:
        return rows[-options.window_rows:]
    if options.window == "sliding" and options.window_days:
        return rows[(times.iloc[rows] >= start - gap - pd.Timedelta(days=options.window_days)).to_numpy()]
    return rows


def folds(times: pd.Series, options: BacktestSettings, gap: pd.Timedelta) -> list[Fold]:
    """The periods of time-ordered `times` after the initial part; a period whose model would
    have nothing to learn from is left out."""
    times = times.reset_index(drop=True)
    if not times.is_monotonic_increasing:
        raise ValueError("the backtest needs the rows in time order")
    starts = _starts(times, options)
    out = []
    for begin, stop in zip(starts, [*starts[1:], len(times)], strict=True):
        start = times.iloc[begin]
        train = training_rows(times, start, gap, options)
        if len(train) and stop > begin:
            out.append(Fold(start, times.iloc[stop - 1], train, np.arange(begin, stop)))
    if not out:
        raise ValueError(f"no period to backtest in {len(times)} rows from {times.iloc[0]} to "
                         f"{times.iloc[-1]}: shorten backtest.period_days / period_rows, or the gap")
    return out


# ---- fitting and scoring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """A calibrated candidate and the features the leakage guard left it."""

    model: BaseEstimator
    features: FeatureSet

    def score(self, rows: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(prepare(rows, self.features))[:, 1]


def new_model(inputs: Inputs, settings: Settings, name: str) -> BaseEstimator:
    """A fresh, unfitted candidate of the experiment (training.experiment.candidates)."""
    models = candidates(inputs.rules, inputs.features, settings.training.lightgbm)
    if name not in models:
        raise ValueError(f"backtest.model {name!r} is not one of {sorted(models)}")
    return models[name]


def guarded_window(window: pd.DataFrame, fit: pd.DataFrame, validation: pd.DataFrame,
                   experiment: Experiment, settings: Settings) -> Inputs:
    """The leakage guard on the whole window (every row known before the period: more evidence
    than its fit part alone), then the model inputs of the fit and validation parts without the
    columns it excluded (and without rules on them)."""
    none = window.iloc[:0]
    excluded = guarded_inputs(replace(experiment, split=Split(window, none, none)), settings).excluded
    rules = usable_rules(experiment.rules, excluded) if experiment.rules is not None else None
    narrowed = replace(experiment, split=Split(fit, validation, none),
                       features=experiment.features.without(excluded), rules=rules)
    return guarded_inputs(narrowed, settings)


def fit_window(window: pd.DataFrame, experiment: Experiment, settings: Settings,
               options: BacktestSettings) -> Fitted:
    """The experiment's steps on one training window (rows in time order), as a retraining then
    would have run them: the leakage guard, a fresh candidate fitted on the window's earlier
    part, stopped early and calibrated on its latest `validation_share`. (Unlike the experiment's
    split, no horizon is purged between the two: both labels are known before the period, and
    a short window would be mostly purge.)"""
    times = window["event_timestamp"]
    cut = times.iloc[int(len(window) * (1 - options.validation_share))]
    fit, validation = window[(times < cut).to_numpy()], window[(times >= cut).to_numpy()]
    if len(fit) == 0 or fit["label"].nunique() < 2 or validation["label"].nunique() < 2:
        raise ValueError(f"a training window of {len(window)} rows up to {times.iloc[-1]} has too few rows "
                         "or one class only in its fit or validation part: lengthen the initial part "
                         "(backtest.initial_share) or the sliding window")
    inputs = guarded_window(window, fit, validation, experiment, settings)
    X, y = inputs.X, inputs.y
    model = fit_model(new_model(inputs, settings, options.model), X["train"], y["train"], X["validation"],
                      y["validation"])
    return Fitted(calibrate(model, X["validation"], y["validation"]), inputs.features)


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, float] | None:
    """ROC-AUC, PR-AUC and ECE (leadscore.scoring.metrics.metrics); None when `y` holds one class."""
    if len(np.unique(y)) < 2:
        return None
    every = metrics(y, p)
    return {name: round(every[name], 6) for name in FIGURES}


def _stamp(time: pd.Timestamp) -> str:
    return time.isoformat()


def run_backtest(frame: pd.DataFrame, experiment: Experiment, settings: Settings, options: BacktestSettings,
                 gap: pd.Timedelta, on_period: Callable[[int, int], None] | None = None) -> Backtest:
    """Rolling-origin evaluation of `options.model` on `frame` (the experiment's features,
    `label` and `event_timestamp`) beside train-once; `on_period(done, total)` after each period."""
    frame = frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True)
    times, y = frame["event_timestamp"], frame["label"].to_numpy().astype(int)
    periods = folds(times, options, gap)
    initial = np.flatnonzero((times < periods[0].start - gap).to_numpy())
    once = fit_window(frame.iloc[initial], experiment, settings, options)
    results, rolling, scored_once = [], [], []
    for done, fold in enumerate(periods, start=1):
        test = frame.iloc[fold.test]
        rolling.append(fit_window(frame.iloc[fold.train], experiment, settings, options).score(test))
        scored_once.append(once.score(test))
        results.append(PeriodResult(
            _stamp(fold.start), _stamp(fold.end), len(fold.train), _stamp(times.iloc[fold.train[-1]]),
            len(fold.test), int(y[fold.test].sum()), figures(y[fold.test], rolling[-1]),
            figures(y[fold.test], scored_once[-1])))
        if on_period:
            on_period(done, len(periods))
    scored = y[np.concatenate([fold.test for fold in periods])]
    return Backtest(options.model, options.window, len(initial), results,
                    _pooled(scored, np.concatenate(rolling)), _pooled(scored, np.concatenate(scored_once)))


def _pooled(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    pooled = figures(y, p)
    if pooled is None:
        raise ValueError("the backtest's periods hold one class only: nothing to rank")
    return pooled


def backtest(frame: pd.DataFrame, experiment: Experiment, settings: Settings, options: BacktestSettings,
             gap: pd.Timedelta, on_period: Callable[[int, int], None] | None = None) -> tuple[Backtest, str]:
    """The backtest on every row of `frame` and its MLflow run: (result, run id)."""
    result = run_backtest(frame, experiment, settings, options, gap, on_period)
    return result, log_backtest(result, experiment, settings, options, gap)


# ---- MLflow ---------------------------------------------------------------------------------------


def log_backtest(result: Backtest, experiment: Experiment, settings: Settings, options: BacktestSettings,
                 gap: pd.Timedelta) -> str:
    """One MLflow run in the experiment's MLflow experiment: each period's figures as steps
    (`period_<figure>`, `period_train_once_<figure>`), the pooled ones (`pooled_<figure>`,
    `train_once_<figure>`), the periods as a CSV. Returns the run id."""
    register.setup_tracking(settings, experiment.name)
    first, last = result.periods[0].start[:10], result.periods[-1].end[:10]
    with mlflow.start_run(run_name=f"backtest {first}..{last}") as run:
        mlflow.set_tags({**experiment.tags, "kind": "backtest"})
        mlflow.log_params({**options.model_dump(), "gap_days": gap.days, "periods": len(result.periods),
                           "train_once_rows": result.train_once_rows})
        for step, period in enumerate(result.periods):
            for prefix, values in (("period_", period.rolling), ("period_train_once_", period.train_once)):
                if values is not None:
                    mlflow.log_metrics({f"{prefix}{k}": v for k, v in values.items()}, step=step)
        mlflow.log_metrics({**{f"pooled_{k}": v for k, v in result.pooled.items()},
                            **{f"train_once_{k}": v for k, v in result.train_once.items()}})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "backtest_periods.csv"
            periods_table(result).to_csv(path, index=False)
            mlflow.log_artifact(str(path))
        return run.info.run_id


def periods_table(result: Backtest) -> pd.DataFrame:
    """One row per period: its span, rows, positives and both models' figures."""
    rows = []
    for period in result.periods:
        row = {"start": period.start[:10], "end": period.end[:10], "train_rows": period.train_rows,
               "test_rows": period.test_rows, "positives": period.positives}
        for name, values in (("rolling", period.rolling), ("train_once", period.train_once)):
            row.update({f"{name}_{k}": (values or {}).get(k, float("nan")) for k in FIGURES})
        rows.append(row)
    return pd.DataFrame(rows)
