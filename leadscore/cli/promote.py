"""`leadscore promote`: the challenger becomes champion when it beats it on live evidence.

The matured cohorts of the score log (monitoring/cohorts.py), where the challenger scored in
shadow beside the champion, decide (monitoring/promotion.py); without enough of them, the two
versions' figures on one test window do, as `leadscore train` decides. A promotion moves the
`champion` alias (the service follows within serving.model_check_s) and is logged with its
evidence in MLflow (experiment lead-propensity-promotions). `leadscore train rollback VERSION`
undoes it.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from leadscore.cli.common import console
from leadscore.config import Settings


def _evidence_table(evidence) -> Table:
    table = Table(title=f"{evidence.basis} evidence" + (f": {evidence.rows:,} matured scores of both "
                                                         f"versions, {evidence.positives:,} converted"
                                                         if evidence.basis == "live" else
                                                         f" on {evidence.window}"))
    table.add_column("version")
    keys = sorted({key for figures in evidence.figures.values() for key in figures})
    for key in keys:
        table.add_column(key, justify="right")
    for version, figures in evidence.figures.items():
        role = "challenger" if version == evidence.challenger else "champion"
        table.add_row(f"v{version} ({role})", *("-" if figures.get(k) is None else f"{figures[k]:.4f}"
                                                for k in keys))
    return table


def promote(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and say why; move no alias.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as one JSON object.")] = False,
) -> None:
    """Promote the challenger to champion if it beats the champion on matured live cohorts
    (PR-AUC, ECE no worse), or, without enough of them, on one test window; say why either way."""
    from leadscore.clock import open_clock
    from leadscore.live.labels import opportunity_labels
    from leadscore.live.log import EVENT_LOG, EventLog
    from leadscore.live.score_log import ScoreLog
    from leadscore.monitoring.cohorts import matured_cohorts
    from leadscore.monitoring.promotion import decide, live_evidence, offline_evidence
    from leadscore.scoring.registry import CHALLENGER, champion_version
    from leadscore.training.register import promote as move_champion
    from leadscore.training.register import version_tags

    settings: Settings = ctx.obj
    champion, challenger = champion_version(settings), champion_version(settings, alias=CHALLENGER)
    if champion is None or challenger is None or challenger == champion:
        console.print("[red]nothing to promote:[/red] " + (
            "no champion (run `leadscore train`)" if champion is None else
            "no challenger other than the champion (run `leadscore retrain`)"))
        raise typer.Exit(2)
    now = open_clock(settings).now()
    scores = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s).read()
    events = EventLog(settings.live_dir / EVENT_LOG, settings.live.busy_timeout_s)
    try:
        labels = opportunity_labels(events, now)
    finally:
        events.close()
    matured = matured_cohorts(scores, labels, now, settings.training.horizon_days, settings.training.target)
    live = live_evidence(matured, champion, challenger, settings.monitoring.bins)
    offline = offline_evidence(champion, challenger, version_tags(settings, [champion, challenger]), "pr_auc")
    decision = decide(live, offline, settings.monitoring.min_matured, settings.training.ece_tolerance,
                      min_converted=settings.monitoring.min_converted)
    promoted = decision.promote and not dry_run
    if promoted:
        move_champion(settings, challenger, decision.reason, decision.evidence.to_json())
    if as_json:
        print(json.dumps({"champion": champion, "challenger": challenger, "promote": decision.promote,
                          "promoted": promoted, "reason": decision.reason,
                          "evidence": decision.evidence.to_json() if decision.evidence else None,
                          "live": live.to_json()}))
        return
    shown = [live] if decision.evidence in (None, live) else [live, decision.evidence]
    for evidence in shown:
        console.print(_evidence_table(evidence))
    verdict = ("promoted" if promoted else "would be promoted (dry run)") if decision.promote else "kept"
    console.print(f"{settings.training.registered_model}: challenger v{challenger} {verdict}; champion "
                  f"{'is now v' + challenger if promoted else 'stays v' + champion}. {decision.reason}",
                  soft_wrap=True)
