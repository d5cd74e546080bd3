"""`leadscore bench loop`: the figures computed from what the loop recorded (alerts, matured
cohorts, outcomes), on tiny hand-made data; and one short loop on a tiny world, end to end
(a real service, real retrains, a short label horizon so that its scores mature)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score
from typer.testing import CliRunner

from leadscore.benchmarks.loop import (
    LoopPlan,
    arms_figures,
    beyond_control,
    control_beside,
    control_command,
    control_figures,
    detection,
    detection_met,
    paired_arms,
    work_dir_of,
)
from leadscore.cli import app
from leadscore.config import Settings

DRIFT = datetime(2027, 1, 30, tzinfo=UTC)
LEADSCORE = str(Path(sys.executable).parent / "leadscore")


def _alert(at: datetime, *keys: str) -> dict:
    return {"at": 0.0, "key": None, "body": {"type": "leadscore_monitoring_alert", "at": at.isoformat(),
                                             "breaches": [{"key": key} for key in keys]}}


def test_detection_is_the_first_alert_after_the_drift_of_a_kind_not_raised_before_it():
    received = [_alert(DRIFT + timedelta(days=20), "ece:champion:v1"),
                _alert(DRIFT - timedelta(days=3), "feature_psi:events_30d"),
                _alert(DRIFT + timedelta(days=2), "feature_psi:events_7d"),  # that kind's noise
                _alert(DRIFT + timedelta(days=9), "feature_psi:events_90d", "score_psi")]
    found = detection(received, DRIFT)
    assert found["detection_days"] == 9
    assert found["first_new_kind_after_drift"]["keys"] == ["score_psi"]
    assert found["first_after_drift"]["day_from_drift"] == 2
    assert found["kinds_before_drift"] == ["feature_psi"]
    assert (found["alerts_before_drift"], found["posted"]) == (1, 4)
    # every kind after the drift, noise included, at its first day: a drifted run and its
    # control (`--no-drift`) are compared on these
    assert found["first_day_of_kind"] == {"feature_psi": 2, "score_psi": 9, "ece": 20}
    # in a control every one of these is a false alarm
    assert found["posted_by_kind"] == {"feature_psi": {"before_drift": 1, "after_drift": 2},
                                       "score_psi": {"before_drift": 0, "after_drift": 1},
                                       "ece": {"before_drift": 0, "after_drift": 1}}


def test_detection_beyond_the_control_skips_what_the_control_raised_as_soon():
    drifted = detection([_alert(DRIFT - timedelta(days=8), "arrivals_down"),
                         _alert(DRIFT + timedelta(days=2), "ece:champion:1"),
                         # the control retrains nothing: a shadow's breach cannot be judged against it
                         _alert(DRIFT + timedelta(days=4), "early_oe:shadow:14d:to-nurture"),
                         _alert(DRIFT + timedelta(days=11), "arrivals_up"),
                         _alert(DRIFT + timedelta(days=30), "roc_auc:champion:1")], DRIFT)
    control = detection([_alert(DRIFT + timedelta(days=2), "ece:champion:1"),     # no drift, as soon
                         _alert(DRIFT + timedelta(days=40), "roc_auc:champion:1"),  # later than the drift's
                         _alert(DRIFT - timedelta(days=3), "score_psi")], DRIFT)
    assert drifted["detection_days"] == 2  # the first matured cohort's ECE, which the control raised too
    assert drifted["first_day_of_kind"]["early_oe"] == 4 and "early_oe" not in drifted[
        "first_day_of_kind_without_shadow"]
    judged = beyond_control(drifted, control)
    assert (judged["detection_days"], judged["kind"]) == (11, "arrivals_up")
    assert judged["kinds"] == {"arrivals_up": 11, "roc_auc": 30}
    alike = detection([_alert(DRIFT + timedelta(days=2), "ece:champion:1")], DRIFT)
    assert beyond_control(alike, control)["detection_days"] is None


def test_a_run_that_fails_stops_the_control_beside_it_as_ctrl_c_does(monkeypatch, tmp_path):
    """Even from a shell that started the bench in the background (SIGINT ignored, inherited)."""
    up, stopped = tmp_path / "up", tmp_path / "stopped"
    code = (f"import sys, time\nopen({str(up)!r}, 'w').close()\n"
            "try:\n    time.sleep(60)\n"
            f"except KeyboardInterrupt:\n    open({str(stopped)!r}, 'w').close()\n    sys.exit(1)\n")
    monkeypatch.setattr("leadscore.benchmarks.loop.control_command",
                        lambda settings, plan: [sys.executable, "-c", code])
    settings, plan, started = SimpleNamespace(root=tmp_path), LoopPlan(control=True), []
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `make test &` starts it
    try:
        begun = time.monotonic()
        with pytest.raises(RuntimeError), control_beside(settings, plan, tmp_path) as control:
            started.append(control)
            while not up.is_file() and control.poll() is None:  # its Python up, its handler set
                time.sleep(0.05)
            assert control.poll() is None  # running beside
            raise RuntimeError("the world failed to build")
        assert control.poll() is not None and stopped.is_file()  # stopped by Ctrl-C's signal, not killed
        assert time.monotonic() - begun < 30
        with control_beside(settings, plan, tmp_path) as control:
            started.append(control)
        assert control.poll() is None  # a run that went well leaves it to finish
    finally:
        signal.signal(signal.SIGINT, ignored)
        for process in started:
            process.kill()
            process.wait()


def test_only_noise_after_the_drift_is_no_detection():
    found = detection([_alert(DRIFT - timedelta(days=1), "score_psi"),
                       _alert(DRIFT + timedelta(days=1), "score_psi")], DRIFT)
    assert found["detection_days"] is None and found["first_new_kind_after_drift"] is None
    assert found["first_after_drift"]["day_from_drift"] == 1


def _matured(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["at", "pid", "model_version", "probability", "converted"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame.assign(day=frame["at"].dt.floor("D"), role="champion", score=50.0, tier="to-nurture")


def test_arms_are_paired_person_days_inside_the_window_and_the_ratio_is_theirs():
    after = DRIFT + timedelta(hours=2)
    rows = [(after, "A", "1", 0.2, 1), (after, "A", "7", 0.9, 1),
            (after, "B", "1", 0.6, 0), (after, "B", "7", 0.1, 0),
            (after, "C", "1", 0.4, 0), (after, "C", "8", 0.3, 0),
            (after, "D", "1", 0.5, 1), (after, "D", "8", 0.8, 1),
            (after, "E", "1", 0.9, 1),                              # the rolling arm did not score it
            (DRIFT - timedelta(days=1), "F", "1", 0.1, 1), (DRIFT - timedelta(days=1), "F", "7", 0.9, 1)]
    figures = arms_figures(paired_arms(_matured(rows), "1", DRIFT, DRIFT + timedelta(days=30)), bins=2)
    assert figures["train_once"]["n"] == figures["rolling"]["n"] == 4
    once = average_precision_score([1, 0, 0, 1], [0.2, 0.6, 0.4, 0.5])
    rolling = average_precision_score([1, 0, 0, 1], [0.9, 0.1, 0.3, 0.8])
    assert figures["train_once"]["pr_auc"] == pytest.approx(once)
    assert figures["rolling"]["pr_auc"] == pytest.approx(rolling) == 1.0
    assert figures["ratio"] == pytest.approx(rolling / once)
    # people resampled: rolling ranks every resample perfectly, so it is never behind
    assert figures["people"] == 4 and figures["ratio_interval"][0] >= 1.0
    assert figures["ratio_interval"][1] > 1.0 and 0.5 < figures["rolling_ahead_share"] <= 1.0


def test_an_arm_with_one_outcome_only_has_no_ratio():
    after = DRIFT + timedelta(hours=2)
    rows = [(after, "A", "1", 0.2, 0), (after, "A", "7", 0.9, 0)]
    figures = arms_figures(paired_arms(_matured(rows), "1", DRIFT, DRIFT + timedelta(days=30)), bins=2)
    assert figures["ratio"] is None and figures["rolling"]["pr_auc"] is None
    assert figures["ratio_interval"] is None and figures["rolling_ahead_share"] is None


def test_a_drift_outside_the_loop_is_refused():
    with pytest.raises(ValueError, match="inside the loop"):
        LoopPlan(days=30, drift_day=30)


def test_a_control_run_without_drift_takes_no_drift_named_beside_it():
    assert LoopPlan(drifts=()).world_drifts() == []
    result = CliRunner().invoke(app, ["bench", "loop", "--no-drift", "--drift", "base_rate"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_the_control_is_the_same_world_and_days_without_drift_or_retraining(settings: Settings):
    plan = LoopPlan(scale=0.1, seed=7, days=40, drift_day=20, control=True)
    command = control_command(settings, plan)
    assert command[command.index("-c") + 1] == str(settings.source)
    options = command[command.index("loop") + 1:]
    assert {"--no-drift", "--monitor-only", "--no-backtest"} <= set(options)
    assert [options[options.index(flag) + 1] for flag in ("--scale", "--seed", "--days", "--drift-day")] == [
        "0.1", "7", "40", "20"]
    with pytest.raises(ValueError, match="control runs beside a drifted loop"):
        LoopPlan(drifts=(), control=True)


def test_detection_alone_runs_a_drifted_world_monitor_only_with_its_control_apart(tmp_path):
    """`--monitor-only` on a drifted world (a world too large to retrain weekly) may take the
    control beside it; each keeps its world in its own folder."""
    alone = LoopPlan(monitor_only=True, control=True)
    control = LoopPlan(drifts=(), monitor_only=True)
    assert work_dir_of(tmp_path, alone) == tmp_path / "bench" / "loop"
    assert work_dir_of(tmp_path, control) == tmp_path / "bench" / "loop-control"
    assert work_dir_of(tmp_path, LoopPlan()) == work_dir_of(tmp_path, alone)


def test_detection_is_judged_against_the_control_when_one_ran():
    alone = {"detection_days": 3.0}
    assert detection_met(alone) and not detection_met({"detection_days": 15.0})
    assert not detection_met({"detection_days": None})
    # the control raised that kind as soon: what counts is the first kind beyond it
    judged = {"detection_days": 3.0, "detection_beyond_control": {"detection_days": 20.0}}
    assert not detection_met(judged)
    assert detection_met({"detection_days": 30.0, "detection_beyond_control": {"detection_days": 4.0}})


def _child(work_dir: Path, code: str) -> subprocess.Popen:
    with open(work_dir / "control.json", "w") as out, open(work_dir / "control.log", "w") as err:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err)


def test_the_control_figures_are_its_json_or_why_it_failed(tmp_path):
    done = _child(tmp_path, "import json; print(json.dumps({'alerts': {'posted': 3}}))")
    assert control_figures(done, tmp_path) == {"alerts": {"posted": 3}}
    failed = _child(tmp_path, "import sys; sys.exit('the control world would not build')")
    assert "the control world would not build" in control_figures(failed, tmp_path)["error"]


@pytest.mark.slow
@pytest.mark.integration
def test_a_short_loop_reports_every_figure(settings: Settings, tmp_path):
    """4 days at scale 0.02 with a 7-day label horizon, a drift at day 2, retraining every 2 days
    (two retrains, one promotion decision); the backtest with logistic regression, 16-week
    periods. Kept cheap for CI: LightGBM with 100 trees at a higher rate, one score-history
    point, so that the run is the loop's steps and not the models' fits."""
    config_dir = tmp_path / "config"
    shutil.copytree(settings.config_dir, config_dir)
    raw = yaml.safe_load(settings.source.read_text())
    raw["training"]["horizon_days"] = 7
    raw["training"]["lightgbm"].update(n_estimators=100, learning_rate=0.1)
    raw["training"]["backtest"].update(model="logistic_regression", period_days=112)
    raw["serving"]["history_points"] = 1
    raw["paths"] = {"data_dir": str(tmp_path / "data"), "mlflow_dir": str(tmp_path / "mlflow"),
                    "feature_repo": str(settings.feature_repo), "datasets_dir": str(settings.datasets_dir)}
    (config_dir / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    result = subprocess.run([LEADSCORE, "-c", str(config_dir / "leadscore.yaml"), "bench", "loop", "--json",
                             "--scale", "0.02", "--days", "4", "--drift-day", "2", "--retrain-every", "2"],
                            capture_output=True, text=True, timeout=1500, cwd=settings.root)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    parameters = figures["parameters"]
    assert (parameters["days"], parameters["drift_day"], parameters["horizon_days"]) == (4, 2, 7)
    drift_at = datetime.fromisoformat(parameters["drift_at"])
    assert drift_at == datetime.fromisoformat(parameters["world_end"]) + timedelta(days=2)
    # judged once the last day's scores have matured
    assert datetime.fromisoformat(parameters["judged_at"]) >= (datetime.fromisoformat(parameters["loop_end"])
                                                               + timedelta(days=7))
    assert parameters["records_sent"] > 0 and parameters["outcomes_sent"] > 0
    retrains = figures["retrain_seconds"]
    assert retrains["retrains"] == 2 and not retrains["failed"] and retrains["loop_median"] > 0
    assert figures["promotions"]["decisions"] == 1  # day 2 judged day 0's challenger
    # both arms on the same person-days of the matured cohorts
    for window in ("before_drift", "after_drift"):
        arms = figures[window]
        assert arms["train_once"]["n"] == arms["rolling"]["n"] > 0
        if arms["ratio"] is not None:
            assert arms["ratio"] == pytest.approx(arms["rolling"]["pr_auc"] / arms["train_once"]["pr_auc"],
                                                  rel=1e-4)
        truth = arms["against_truth"]  # the same person-days against the world's hidden truth
        assert 0 < truth["rolling"]["pr_auc"] <= 1 and 0 < truth["train_once"]["roc_auc"] <= 1
        assert truth["ratio"] == pytest.approx(truth["rolling"]["pr_auc"] / truth["train_once"]["pr_auc"],
                                               rel=1e-4)
    alerts = figures["alerts"]
    if figures["detection_days"] is not None:
        first = alerts["first_new_kind_after_drift"]
        assert figures["detection_days"] == first["day_from_drift"] >= 0
        assert not {key.split(":")[0] for key in first["keys"]} & set(alerts["kinds_before_drift"])
    assert figures["met"]["detection_days"] == (figures["detection_days"] is not None
                                                and figures["detection_days"] <= 14)
    backtest = figures["backtest"]
    assert backtest["periods"] > 0 and set(backtest["pooled"]) == {"roc_auc", "pr_auc", "ece"}
    assert figures["met"]["backtest"] == (backtest["pooled"]["roc_auc"] > backtest["train_once"]["roc_auc"])
