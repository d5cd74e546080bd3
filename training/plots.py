"""Evaluation plots of the test window, for MLflow artifacts.

Every function returns a `matplotlib.figure.Figure` built without pyplot (Agg
canvas, never a window), so it works headless and from any thread. Functions
that take `probabilities` draw one curve per model (name -> probabilities on the
rows of `y`). Log them with `mlflow.log_figure(fig, "plots/roc.png")`, or write
them with `save_figures` and log the folder with `mlflow.log_artifacts`.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from leadscore.scoring.metrics import check_labels, quantile_bins

DPI = 110
GREY = "#888888"


def _figure(width: float = 6.4, height: float = 5.2) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _checked(y, probabilities: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not probabilities:
        raise ValueError("no models to plot: `probabilities` is empty")
    y, _ = check_labels(y)
    return y, {name: check_labels(y, p, what=f"model {name}")[1] for name, p in probabilities.items()}


def roc_curves(y, probabilities: dict[str, np.ndarray]) -> Figure:
    """ROC curve of each model (AUC in the legend) and the chance diagonal."""
    y, probabilities = _checked(y, probabilities)
    fig, ax = _figure()
    for name, p in probabilities.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (share of non-converters flagged)",
           ylabel="true positive rate (share of converters flagged)", title="ROC curve, test window")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def pr_curves(y, probabilities: dict[str, np.ndarray]) -> Figure:
    """Precision-recall curve of each model (average precision in the legend) and the base rate."""
    y, probabilities = _checked(y, probabilities)
    fig, ax = _figure()
    top = y.mean()
    for name, p in probabilities.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.step(recall, precision, where="post", lw=1.6,
                label=f"{name} (AP {average_precision_score(y, p):.3f})")
        top = max(top, float(precision[recall > 0.01].max()) if (recall > 0.01).any() else top)
    ax.axhline(y.mean(), ls="--", color=GREY, lw=1, label=f"base rate ({y.mean():.3f})")
    ax.set(xlim=(0, 1), ylim=(0, min(1.0, top * 1.1)), xlabel="recall (share of converters found)",
           ylabel="precision (share of flagged leads that convert)",
           title="Precision-recall curve, test window")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def calibration_curves(y, probabilities: dict[str, np.ndarray], bins: int = 10) -> Figure:
    """Reliability diagram: observed conversion rate against mean predicted probability per quantile bin.

    The bins are the equal-count bins of `expected_calibration_error`, so the
    legend's ECE is the weighted gap to the diagonal drawn here.
    """
    y, probabilities = _checked(y, probabilities)
    fig, ax = _figure()
    top = 0.0
    for name, p in probabilities.items():
        table = quantile_bins(y.astype(float), p, bins)
        ece = float((abs(table["observed"] - table["predicted"]) * table["rows"]).sum() / table["rows"].sum())
        ax.plot(table["predicted"], table["observed"], marker="o", lw=1.4, label=f"{name} (ECE {ece:.4f})")
        top = max(top, table["predicted"].max(), table["observed"].max())
    top = min(1.0, max(top * 1.05, 1e-3))
    ax.plot([0, top], [0, top], ls="--", color=GREY, lw=1, label="perfectly calibrated")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability (per bin)",
           ylabel="observed conversion rate (per bin)",
           title=f"Calibration (reliability), {bins} equal-count bins, test window")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def _gains(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of leads contacted, share of conversions captured), best leads first; tied leads as one step."""
    order = np.argsort(-p, kind="stable")
    ranked_p, ranked_y = p[order], y[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked_p) != 0), len(p) - 1]  # last row of each run of ties
    contacted = np.r_[0, ends + 1] / len(p)
    captured = np.r_[0, np.cumsum(ranked_y)[ends]] / y.sum()
    return contacted, captured


def cumulative_gains(y, probabilities: dict[str, np.ndarray]) -> Figure:
    """Share of all conversions captured against the share of leads contacted, best-scored first.

    Tied probabilities are joined by a straight line (the expected gain when
    calling tied leads in random order). The diagonal is random calling.
    """
    y, probabilities = _checked(y, probabilities)
    fig, ax = _figure()
    for name, p in probabilities.items():
        contacted, captured = _gains(y, p)
        ten = float(np.interp(0.10, contacted, captured))
        ax.plot(contacted, captured, lw=1.6, label=f"{name} ({ten:.0%} captured in top 10%)")
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, lw=1, label="random")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="share of leads contacted (highest probability first)",
           ylabel="share of conversions captured", title="Cumulative gains, test window")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def conversion_by_tier_chart(table: pd.DataFrame) -> Figure:
    """Bars of each tier's conversion rate (the table of `metrics.conversion_by_tier`), counts annotated."""
    missing = {"tier", "leads", "conversions", "rate"} - set(table.columns)
    if missing:
        raise ValueError(f"the tier table lacks columns {sorted(missing)}; "
                         "pass the table of leadscore.scoring.metrics.conversion_by_tier")
    fig, ax = _figure(7.0, 4.8)
    rates = table["rate"].fillna(0.0).to_numpy(float)
    positions = np.arange(len(table))
    bars = ax.bar(positions, rates, color="#4C72B0", label="conversion rate of the tier")
    leads, conversions = int(table["leads"].sum()), int(table["conversions"].sum())
    if leads:
        ax.axhline(conversions / leads, ls="--", color=GREY, lw=1,
                   label=f"all leads ({conversions / leads:.1%})")
    for bar, (_, row) in zip(bars, table.iterrows(), strict=True):
        text = (f"{row['rate']:.1%}\n{int(row['conversions']):,} / {int(row['leads']):,}"
                if row["leads"] else "no leads")
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(positions, table["tier"].astype(str).tolist())
    ax.set_ylim(0, max(rates.max(initial=0.0), 1e-3) * 1.3)
    ax.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}" if value >= 0.1 else f"{value:.1%}")
    ax.set(xlabel="tier", ylabel="conversion rate (conversions / leads)",
           title="Conversion rate by tier, test window")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def _colour_values(X: pd.DataFrame) -> pd.DataFrame:
    """Colour values: numeric and boolean columns as floats, categorical ones as objects (drawn grey)."""
    out = {}
    for column in X.columns:
        values = X[column]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            out[column] = pd.to_numeric(values.astype("float64"), errors="coerce")
        else:
            out[column] = values.astype(object)
    return pd.DataFrame(out, index=X.index)


def shap_summary(contributions: pd.DataFrame, X: pd.DataFrame, max_features: int = 20, *,
                 max_rows: int = 5000, seed: int = 0, title: str | None = None,
                 xlabel: str = "contribution to the score (log-odds, or points for rules)") -> Figure:
    """SHAP beeswarm of precomputed per-row contributions (e.g. `explain.contributions`).

    `contributions` has one column per feature and the index of `X`. Features are
    ordered by mean |contribution|; past `max_features` the rest are summed into
    one row. Dots are coloured by the feature's value (low blue, high red);
    categorical (object or category) columns and missing values are grey. At most
    `max_rows` rows are drawn (a fixed random sample), so large test windows stay fast.
    """
    with warnings.catch_warnings():  # shap's colour maps use matplotlib calls pending deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap  # heavy (numba): imported only when this plot is drawn

    if not contributions.index.equals(X.index):
        raise ValueError("contributions and X must have the same index (one contribution row per row of X)")
    absent = [c for c in contributions.columns if c not in X.columns]
    if absent:
        raise ValueError(f"features with contributions but no values in X: {absent[:5]}")
    if contributions.empty:
        raise ValueError("no contributions to plot")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), max_rows, replace=False)) if len(X) > max_rows else np.arange(len(X))
    values = contributions.iloc[rows].to_numpy(dtype=float)
    data = _colour_values(X.iloc[rows][list(contributions.columns)])
    shown = min(max_features, values.shape[1])
    fig, ax = _figure(8.0, 0.4 * shown + 1.8)
    explanation = shap.Explanation(values=values, data=data, feature_names=list(contributions.columns))
    state = np.random.get_state()  # the beeswarm jitters with numpy's global generator
    try:
        np.random.seed(seed)
        shap.plots.beeswarm(explanation, max_display=max_features, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(state)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.tick_params("y", labelsize=9)
    ax.set_title(title or f"Feature contributions (SHAP), {len(rows):,} test rows", fontsize=12)
    return fig


def save_figures(figures: dict[str, Figure], folder: Path) -> list[Path]:
    """Write each figure to `folder/<name>.png` and close it; returns the paths, in the order given."""
    folder = Path(folder)
    bad = [name for name in figures if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name)]
    if bad:
        raise ValueError(f"figure names must be plain file names (letters, digits, _ . -): {bad}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=DPI, format="png")
        paths.append(path)
        if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot is also released there
            sys.modules["matplotlib.pyplot"].close(fig)
    return paths
