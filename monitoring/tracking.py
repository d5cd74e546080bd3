"""A report in MLflow: one run per `leadscore monitor` in `monitoring.experiment`, its figures
as metrics stamped with the clock (step: the clock's Unix seconds, timestamp: its
milliseconds), so MLflow's charts of the experiment are the figures over (world) time."""

from __future__ import annotations

import json
import math

import mlflow
from leadscore.config import Settings
from leadscore.monitoring.report import Report
from leadscore.scoring.registry import use_experiment

MODEL_FIGURES = ("n", "positives", "roc_auc", "pr_auc", "ece")


def report_metrics(report: Report) -> dict[str, float]:
    """The report's numbers under MLflow metric names (None and NaN left out)."""
    figures: dict[str, float | None] = {f"{m['role']}.v{version}.{name}": m[name]
                                        for version, m in report.models.items() for name in MODEL_FIGURES}
    figures["score_psi"] = report.score_psi
    for row in report.drift.to_dict("records"):
        figures[f"psi.{row['feature']}"] = row["psi"]
        figures[f"missing_increase.{row['feature']}"] = row["missing_increase"]
    for row in report.early.to_dict("records"):
        figures[f"early_oe.{row['role']}.{row['window_days']}d.{row['group']}"] = row["oe"]
    figures.update({f"arrivals.{k}": report.arrivals.get(k) for k in ("observed", "expected", "up", "down")})
    operations = report.operations
    figures.update({f"webhook.{kind}.{status}": n for kind, counts in operations["webhook"].items()
                    for status, n in counts.items()})
    figures.update({f"dispositions.{k}": v for k, v in operations["dispositions"].items()
                    if k != "rejection_reasons"})
    figures.update({f"ingest.{k}": v for k, v in operations["ingest"].items()})
    figures["breaches"] = len(report.breaches)
    return {k: float(v) for k, v in figures.items() if v is not None and not math.isnan(float(v))}


def log_report(report: Report, settings: Settings) -> str:
    """Log the report as one run (its JSON as an artifact too); returns the run id."""
    use_experiment(settings, settings.monitoring.experiment)
    with mlflow.start_run(run_name=f"monitor {report.at:%Y-%m-%d %H:%M}") as run:
        mlflow.set_tags({"clock": report.at.isoformat(), "champion": str(report.champion)})
        mlflow.log_metrics(report_metrics(report), step=int(report.at.timestamp()),
                           timestamp=int(report.at.timestamp() * 1000))
        mlflow.log_dict(json.loads(json.dumps(report.to_json(), default=str)), "report.json")
    return run.info.run_id
