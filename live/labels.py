"""The CRM's outcomes as labels: what training will learn from, as it was known at a time.

`opportunity_labels(log, until)` folds the outcomes up to `until` into one row per
opportunity, in the middle layer's `outcome` shape (identity/middle.py): the table that
training's label SQL (training/dataset.py, TARGETS) reads, so that live outcomes can stand
beside or instead of the batch's. `dispositions(log, until)` lists what sales did with
pushed MQLs, for monitoring's accepted/rejected counts and for labels that learn from them.

`leadscore retrain` uses them: the import contracts keep training from importing the live
path, so its caller (the CLI, leadscore/cli/retrain.py) reads the frames here and hands them
to training (training/dataset.py, `labelled_entities(..., live_outcomes)`), as it hands the
settings.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from leadscore.live.log import EventLog
from leadscore.live.outcomes import OPPORTUNITY_KINDS

LABEL_COLUMNS = ["opportunity_id", "pid", "opportunity_created_at", "stage", "won_at", "closed_at",
                 "amount_usd"]
DISPOSITION_COLUMNS = ["pid", "crm_id", "at", "disposition", "reason"]
CLOSED = ("won", "lost")


def fold_opportunities(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per opportunity from its outcomes (oldest first, as `EventLog.outcomes` gives them).

    Opened at its first outcome; its stage is the latest outcome's (`won`, `lost`, the stage of
    `stage_changed`, or that of `opportunity_created`, `open` when none is given); `won_at` and
    `closed_at` are the time of that latest outcome when it closed the opportunity (one reopened
    after a loss is open again); the amount is the latest given; the person, the latest's."""
    events = outcomes[outcomes["kind"].isin(OPPORTUNITY_KINDS)]
    if events.empty:
        return pd.DataFrame(columns=LABEL_COLUMNS)
    stage = events["kind"].where(events["kind"].isin(CLOSED), events["stage"].fillna("open"))
    grouped = events.assign(stage=stage).groupby("crm_id", sort=False)
    last = grouped.tail(1).set_index("crm_id")
    return pd.DataFrame({
        "opportunity_id": last.index.to_numpy(),
        "pid": last["pid"].to_numpy(),
        "opportunity_created_at": grouped["at"].min().reindex(last.index).to_numpy(),
        "stage": last["stage"].to_numpy(),
        "won_at": last["at"].where(last["stage"] == "won").to_numpy(),
        "closed_at": last["at"].where(last["stage"].isin(CLOSED)).to_numpy(),
        "amount_usd": grouped["amount_usd"].last().reindex(last.index).to_numpy(),  # last non-null
    }).sort_values(["opportunity_created_at", "opportunity_id"], ignore_index=True)


def opportunity_labels(log: EventLog, until: datetime) -> pd.DataFrame:
    """Each opportunity the CRM reported, as known at `until` (its outcomes at or before it)."""
    return fold_opportunities(log.outcomes(until=until))


def dispositions(log: EventLog, until: datetime) -> pd.DataFrame:
    """What sales did with pushed MQLs up to `until`, oldest first (a lead accepted, then
    recycled, has both rows)."""
    outcomes = log.outcomes(until=until)
    return outcomes.loc[outcomes["kind"] == "disposition", DISPOSITION_COLUMNS].reset_index(drop=True)
