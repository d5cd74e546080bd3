import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from leadscore.scoring.metrics import conversion_by_tier, expected_calibration_error
from leadscore.training import plots

RNG = np.random.default_rng(7)
Y = (RNG.random(400) < 0.2).astype(int)
PROBABILITIES = {
    "LightGBM": np.clip(0.1 + 0.5 * Y * RNG.random(400) + 0.2 * RNG.random(400), 0, 1),
    "rules": np.round(np.clip(0.15 + 0.2 * Y + 0.1 * RNG.random(400), 0, 1), 1),  # many ties
}


def _legend(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


@pytest.mark.parametrize("draw, reference", [
    (plots.roc_curves, "chance"),
    (plots.pr_curves, "base rate"),
    (plots.calibration_curves, "perfectly calibrated"),
    (plots.cumulative_gains, "random"),
])
def test_one_curve_per_model_and_a_reference(draw, reference):
    fig = draw(Y, PROBABILITIES)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3
    legend = _legend(fig)
    assert len(legend) == 3
    assert legend[0].startswith("LightGBM") and legend[1].startswith("rules")
    assert legend[2].startswith(reference)
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


def test_a_single_model_and_a_single_class_are_handled():
    assert len(plots.roc_curves(Y, {"only": PROBABILITIES["rules"]}).axes[0].get_lines()) == 2
    with pytest.raises(ValueError, match="only one class"):
        plots.roc_curves(np.zeros(400), PROBABILITIES)


def test_calibration_shows_the_equal_count_bins_of_the_ece():
    fig = plots.calibration_curves(Y, PROBABILITIES)
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 10
    assert f"ECE {expected_calibration_error(Y, PROBABILITIES['LightGBM']):.4f}" in _legend(fig)[0]


def test_cumulative_gains_runs_from_nothing_to_everything_and_joins_ties():
    fig = plots.cumulative_gains(Y, PROBABILITIES)
    x, y = (np.asarray(v) for v in fig.axes[0].get_lines()[0].get_data())
    assert (x[0], y[0], x[-1], y[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0)
    tied = plots.cumulative_gains(np.array([1, 0, 0, 0]), {"flat": np.full(4, 0.2)})
    x, y = tied.axes[0].get_lines()[0].get_data()
    assert list(x) == [0, 1] and list(y) == [0, 1]  # all tied: the random line, whatever the row order


def test_conversion_by_tier_chart_has_a_bar_and_counts_per_tier():
    table = conversion_by_tier(np.array([1, 0, 0, 1, 1]), pd.Series(["hot", "hot", "cold", "cold", "cold"]),
                               ["hot", "empty", "cold"])
    fig = plots.conversion_by_tier_chart(table)
    ax = fig.axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([0.5, 0.0, 2 / 3])
    texts = [text.get_text() for text in ax.texts]
    assert any("1 / 2" in t for t in texts) and any("2 / 3" in t for t in texts) and "no leads" in texts
    assert [label.get_text() for label in ax.get_xticklabels()] == ["hot", "empty", "cold"]
    with pytest.raises(ValueError, match="rate"):
        plots.conversion_by_tier_chart(table.drop(columns="rate"))


def test_shap_summary_with_a_categorical_column():
    n = 60
    X = pd.DataFrame({
        "industry": RNG.choice(["software", "retail", None], n),
        "employees": RNG.integers(1, 5000, n).astype(float),
        "opened_emails": RNG.poisson(2, n),
        "decision_maker": RNG.random(n) < 0.5,
    }, index=np.arange(100, 100 + n))
    contributions = pd.DataFrame({
        "industry": RNG.normal(0, 3, n), "employees": RNG.normal(0, 1, n),
        "opened_emails": RNG.normal(0, 0.5, n), "decision_maker": RNG.normal(0, 0.1, n),
    }, index=X.index)
    state = np.random.get_state()
    fig = plots.shap_summary(contributions, X, max_features=20)
    assert np.array_equal(np.random.get_state()[1], state[1])  # numpy's global generator is left as it was
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # features strongest first, from the top of the plot
    assert [t.get_text() for t in ax.get_yticklabels()][::-1] == [
        "industry", "employees", "opened_emails", "decision_maker"]
    grey = mcolors.to_rgba("#777777")
    all_grey = [c for c in ax.collections if len(c.get_offsets()) == n
                and np.allclose(c.get_facecolors()[:, :3], grey[:3])]
    assert len(all_grey) == 1  # the categorical feature only; the others are coloured by value
    assert ax.get_title() and ax.get_xlabel()

    two = plots.shap_summary(contributions, X, max_features=2)
    labels = [t.get_text() for t in two.axes[0].get_yticklabels()][::-1]
    assert labels == ["industry", "Sum of 3 other features"]
    with pytest.raises(ValueError, match="same index"):
        plots.shap_summary(contributions.reset_index(drop=True), X)


def test_save_figures_writes_pngs(tmp_path):
    figures = {"roc": plots.roc_curves(Y, PROBABILITIES), "gains": plots.cumulative_gains(Y, PROBABILITIES)}
    paths = plots.save_figures(figures, tmp_path / "plots")
    assert paths == [tmp_path / "plots" / "roc.png", tmp_path / "plots" / "gains.png"]
    for path in paths:
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="file names"):
        plots.save_figures({"../escape": figures["roc"]}, tmp_path)
