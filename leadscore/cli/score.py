"""`leadscore score`: batch scores of everyone, with their history, by the champion."""

from __future__ import annotations

import typer

from leadscore.cli.common import console, step
from leadscore.config import Settings


def run_score(settings: Settings) -> None:
    from leadscore.serving.batch import score_everyone
    from leadscore.serving.champion import ChampionWatcher
    from leadscore.serving.webhook import MqlPusher

    with step("batch scoring: everyone, with score history"):
        scorer = ChampionWatcher(settings).current
        with MqlPusher(settings.serving.webhook, settings.serving_dir) as pusher:
            summary = score_everyone(settings, scorer, pusher)
    console.print(f"  {summary.people:,} people at {len(summary.times)} times "
                  f"({summary.times[0]:%Y-%m-%d} .. {summary.times[-1]:%Y-%m-%d}) with model version "
                  f"{scorer.version} -> {summary.path}", soft_wrap=True)
    console.print("  latest tiers: " + ", ".join(f"{tier} {n:,}" for tier, n in summary.by_tier.items()))
    if summary.queued_for_crm:
        console.print(f"  {summary.queued_for_crm:,} new MQLs queued for the CRM webhook: "
                      "`leadscore serve` delivers them (with retries)", soft_wrap=True)


def score(ctx: typer.Context) -> None:
    """Score everyone with the champion (now and at earlier times: the score history that
    portraits and segments read), and queue new MQLs for the CRM webhook."""
    run_score(ctx.obj)
