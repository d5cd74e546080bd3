"""Conversion by tier over time: of the leads scored in a month with a tier, the share that
converted within the label horizon (an opportunity created in it; `training.target: won`: won).

Two sources of scores, each judged only once its horizon has passed by the clock, labelled as
monitoring labels the score log (monitoring/cohorts.py: a person with an opportunity open at
the score is left out):

- `batch`: `leadscore score`'s history (everyone, every 4 weeks back), labelled by the middle
  layer's opportunities and the CRM's since;
- `live`: the champion's scores served since (the score log), one a person a day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from leadscore.clock import open_clock
from leadscore.config import Settings
from leadscore.live.labels import LABEL_COLUMNS, opportunity_labels
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.marketing.inputs import batch_scores_path
from leadscore.monitoring.cohorts import SHADOW, label_scores
from leadscore.monitoring.inputs import matured_scores_at

CONVERSION_COLUMNS = ["month", "source", "tier", "scores", "converted", "conversion_rate"]


def batch_outcomes(settings: Settings) -> pd.DataFrame:
    """The middle layer's opportunities (LABEL_COLUMNS; empty without a middle layer)."""
    if not settings.middle_db.is_file():
        return pd.DataFrame(columns=LABEL_COLUMNS)
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return con.execute(f"SELECT {', '.join(LABEL_COLUMNS)} FROM outcome").fetchdf()


def crm_outcomes(settings: Settings, now: datetime) -> pd.DataFrame:
    """The opportunities the CRM reported through POST /outcomes up to `now` (LABEL_COLUMNS)."""
    events = EventLog(settings.live_dir / EVENT_LOG, settings.live.busy_timeout_s)
    try:
        return opportunity_labels(events, now)
    finally:
        events.close()


def matured_batch_scores(settings: Settings, now: datetime) -> pd.DataFrame:
    """(at, pid, tier) of the batch scores whose horizon has passed by `now`."""
    path = batch_scores_path(settings)
    if path is None:
        return pd.DataFrame(columns=["at", "pid", "tier"])
    history = pd.read_parquet(path, columns=["pid", "tier", "scored_at"])
    at = pd.to_datetime(history["scored_at"], utc=True)
    matured = at + timedelta(days=settings.training.horizon_days) <= pd.Timestamp(now)
    return history.assign(at=at)[matured][["at", "pid", "tier"]].reset_index(drop=True)


def tier_rates(labelled: pd.DataFrame, source: str) -> pd.DataFrame:
    """CONVERSION_COLUMNS of labelled scores (at, tier, converted), by month of the score."""
    if labelled.empty:
        return pd.DataFrame(columns=CONVERSION_COLUMNS)
    month = labelled["at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("M").dt.to_timestamp()
    table = (labelled.assign(month=month.dt.date, source=source)
             .groupby(["month", "source", "tier"], as_index=False)
             .agg(scores=("converted", "size"), converted=("converted", "sum")))
    table["conversion_rate"] = table["converted"] / table["scores"]
    return table[CONVERSION_COLUMNS]


def conversion_by_tier(settings: Settings) -> pd.DataFrame:
    """CONVERSION_COLUMNS for both sources at the clock's now, oldest month first."""
    now = open_clock(settings).now()
    horizon, target = settings.training.horizon_days, settings.training.target
    reported = [frame for frame in (batch_outcomes(settings), crm_outcomes(settings, now)) if len(frame)]
    labels = (pd.concat(reported, ignore_index=True).drop_duplicates("opportunity_id", keep="last")
              if reported else pd.DataFrame(columns=LABEL_COLUMNS))
    batch = label_scores(matured_batch_scores(settings, now), labels, horizon, target)
    live = matured_scores_at(settings, now)
    live = live[live["role"] != SHADOW]
    tables = [table for table in (tier_rates(batch, "batch"), tier_rates(live, "live")) if len(table)]
    if not tables:
        return pd.DataFrame(columns=CONVERSION_COLUMNS)
    table = pd.concat(tables, ignore_index=True)
    return table.sort_values(["month", "source", "tier"], kind="stable").reset_index(drop=True)
