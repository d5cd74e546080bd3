"""`leadscore monitor`: matured performance, drift and operations at the clock, with alerts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from leadscore.cli.common import console, step
from leadscore.config import Settings

if TYPE_CHECKING:
    from leadscore.features.store import OnlineFeatures
    from leadscore.monitoring.report import Report


def _models_table(models: dict[str, dict]) -> Table:
    table = Table(title="Matured cohorts (scores whose horizon has passed), per model version")
    for column in ("version", "role", "scores", "converted", "ROC-AUC", "PR-AUC", "ECE"):
        table.add_column(column, justify="right")
    for version, m in models.items():
        table.add_row(version, m["role"], f"{m['n']:,}", f"{m['positives']:,}",
                      *("-" if m[k] is None else f"{m[k]:.3f}" for k in ("roc_auc", "pr_auc", "ece")))
    return table


def _summary(report) -> None:
    console.print(f"[bold]monitoring at {report.at:%Y-%m-%d %H:%M} UTC[/bold] (clock), champion "
                  f"v{report.champion}, horizon {report.horizon_days} days")
    if report.models:
        console.print(_models_table(report.models))
    else:
        console.print("no matured scores yet: a score is judged once its horizon has passed")
    drift = report.drift.head(5)
    psi = "-" if report.score_psi is None else f"{report.score_psi:.3f}"
    if report.drift_wait_days is not None:
        console.print(f"drift: judged once the window holds monitoring.min_drift_days of served traffic, "
                      f"{report.drift_wait_days:.1f} more days")
    else:
        console.print(f"drift: PSI of the score {psi}; most drifted features: "
                      + (", ".join(f"{r.feature} {r.psi:.3f}" for r in drift.itertuples()) or "-"))
    mqls, sales, ingest = (report.operations[k] for k in ("webhook", "dispositions", "ingest"))
    console.print(f"MQLs pushed: {mqls['mql']['delivered']:,} delivered, {mqls['mql']['failed']:,} failed; "
                  f"sales: {sales['accepted']:,} accepted, {sales['rejected']:,} rejected; ingest: "
                  f"{ingest['quarantined']:,} of {ingest['kept'] + ingest['quarantined']:,} records "
                  "quarantined")
    for breach in report.breaches:
        posted = " (posted)" if breach.key in report.posted else ""
        console.print(f"[red]breach[/red] {breach.message}{posted}")


def run_monitor(settings: Settings, online: OnlineFeatures | None = None) -> Report:
    """One monitoring report at the clock: read, computed, its breaches posted (once each) to
    monitoring.alert_webhook and the whole logged to MLflow. `online`: an open
    `OnlineFeatures` to reuse (else one is opened). FileNotFoundError, LookupError or
    ValueError when there is no feature build or champion spec to compare with."""
    from leadscore.clock import open_clock
    from leadscore.features.build import read_manifest
    from leadscore.features.store import OnlineFeatures, open_store
    from leadscore.monitoring.alerts import AlertState, post_new_breaches
    from leadscore.monitoring.inputs import read_inputs
    from leadscore.monitoring.report import build_report
    from leadscore.monitoring.tracking import log_report

    now = open_clock(settings).now()
    with step("reading the score log, outcomes, operations and features"):
        read_manifest(settings.feature_data_dir)  # a feature build to compare with, or say so
        online = online or OnlineFeatures(open_store(settings))
        inputs = read_inputs(settings, now, online.read_rows)
    with step("computing the report"):
        report = build_report(inputs, settings)
    config = settings.monitoring
    report.posted = post_new_breaches(report.breaches, AlertState(settings.monitoring_dir),
                                      config.alert_webhook, now, config.alert_timeout_s,
                                      config.alert_keep_days)
    with step(f"logging to MLflow ({config.experiment})"):
        log_report(report, settings)
    return report


def monitor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Matured cohorts (ROC-AUC, PR-AUC, ECE, conversion by decile and tier) per model version,
    drift against the champion's data, operations; breaches of monitoring.thresholds are logged,
    posted once to monitoring.alert_webhook, and everything is logged to MLflow at the clock."""
    try:
        report = run_monitor(ctx.obj)
    except (FileNotFoundError, LookupError, ValueError) as error:  # no build or spec to compare with
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(report.to_json(), default=str))
    else:
        _summary(report)
