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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from leadscore.cli.common import console
from leadscore.config import Settings

if TYPE_CHECKING:
    from leadscore.monitoring.promotion import Decision, Evidence


def _evidence_table(evidence) -> Table:
    pooled = evidence.lineage if len(evidence.lineage) > 1 else []
    lineage = f" (the challenger with its lineage, v{', v'.join(pooled)})" if pooled else ""
    table = Table(title=f"{evidence.basis} evidence" + (f": {evidence.rows:,} matured scores of both "
                                                         f"versions{lineage}, {evidence.positives:,} "
                                                         f"converted ({evidence.converted_people:,} people)"
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


@dataclass(frozen=True)
class Promotion:
    """A decision on the challenger and whether the champion alias moved."""

    champion: str
    challenger: str
    decision: Decision
    live: Evidence
    promoted: bool

    def to_json(self) -> dict:
        evidence = self.decision.evidence
        return {"champion": self.champion, "challenger": self.challenger, "promote": self.decision.promote,
                "promoted": self.promoted, "reason": self.decision.reason,
                "evidence": evidence.to_json() if evidence else None, "live": self.live.to_json()}


def run_promote(settings: Settings, dry_run: bool = False) -> Promotion:
    """Decide on the challenger (with the shadow scores of its lineage, the earlier retrains of
    its policy), and promote it unless `dry_run`; LookupError when there is nothing to promote."""
    from leadscore.clock import open_clock
    from leadscore.monitoring.inputs import matured_scores_at
    from leadscore.monitoring.promotion import decide, live_evidence, offline_evidence
    from leadscore.scoring.registry import CHALLENGER, champion_version
    from leadscore.training.register import lineage_versions, version_tags
    from leadscore.training.register import promote as move_champion

    champion, challenger = champion_version(settings), champion_version(settings, alias=CHALLENGER)
    if champion is None or challenger is None or challenger == champion:
        raise LookupError("no champion (run `leadscore train`)" if champion is None else
                          "no challenger other than the champion (run `leadscore retrain`)")
    matured = matured_scores_at(settings, open_clock(settings).now())
    tags = version_tags(settings, [champion, challenger])
    lineage = tags[challenger].get("lineage")
    monitoring = settings.monitoring
    live = live_evidence(matured, champion, challenger, monitoring.bins,
                         lineage_versions(settings, lineage) if lineage else [challenger],
                         monitoring.promotion_resamples)
    offline = offline_evidence(champion, challenger, tags, "pr_auc")
    decision = decide(live, offline, monitoring.min_matured, settings.training.ece_tolerance,
                      min_converted=monitoring.min_converted, min_confidence=monitoring.promotion_confidence)
    promoted = decision.promote and not dry_run
    if promoted:
        evidence = decision.evidence.to_json() if decision.evidence is not None else None
        move_champion(settings, challenger, decision.reason, evidence)
    return Promotion(champion, challenger, decision, live, promoted)


def promote(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and say why; move no alias.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as one JSON object.")] = False,
) -> None:
    """Promote the challenger to champion if it beats the champion on matured live cohorts
    (PR-AUC, ECE no worse), or, without enough of them, on one test window; say why either way."""
    settings: Settings = ctx.obj
    try:
        outcome = run_promote(settings, dry_run)
    except LookupError as error:
        console.print(f"[red]nothing to promote:[/red] {error.args[0]}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(outcome.to_json()))
        return
    decision, live = outcome.decision, outcome.live
    for evidence in [live] if decision.evidence in (None, live) else [live, decision.evidence]:
        console.print(_evidence_table(evidence))
    champion, challenger, promoted = outcome.champion, outcome.challenger, outcome.promoted
    verdict = ("promoted" if promoted else "would be promoted (dry run)") if decision.promote else "kept"
    console.print(f"{settings.training.registered_model}: challenger v{challenger} {verdict}; champion "
                  f"{'is now v' + challenger if promoted else 'stays v' + champion}. {decision.reason}",
                  soft_wrap=True)
