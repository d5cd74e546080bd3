"""Matured cohorts: logged scores whose label horizon has passed by the clock, with their labels.

A score logged at `at` is judged on what the CRM reported afterwards: converted when an
opportunity was created in (at, at + horizon] (with `training.target: won`, won in it), the
label training learns from. A score is in no cohort before `at + horizon <= now`: judged
earlier, every lead not yet converted would count as a miss. As in training's snapshots, a
score of a person whose opportunity was already open at `at` is left out (nothing to predict).

A person scored many times a day (ingest, portrait, the CRM asking) counts once per model
version and day, by the day's first score: a busy lead must not weigh more than a quiet one.
Shadow scores (`trigger = "shadow"`, a challenger scoring beside the champion) are their own
role, so that each model version is judged on its own rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

SHADOW = "shadow"
COHORT_COLUMNS = ["at", "day", "pid", "model_version", "role", "probability", "score", "tier", "converted"]


def with_roles(scores: pd.DataFrame) -> pd.DataFrame:
    """The score log's rows with `role`: `shadow` for a challenger's shadow scores, else `champion`."""
    return scores.assign(role=scores["trigger"].eq(SHADOW).map({True: SHADOW, False: "champion"}))


def daily_first_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (role, model version, person, clock day): the day's first score."""
    frame = with_roles(scores).assign(day=scores["at"].dt.floor("D"))
    return (frame.sort_values("at", kind="stable")
            .drop_duplicates(["role", "model_version", "pid", "day"]).reset_index(drop=True))


def matured_scores(scores: pd.DataFrame, now: datetime, horizon_days: int) -> pd.DataFrame:
    """The daily first scores whose horizon has passed by `now`."""
    daily = daily_first_scores(scores)
    return daily[daily["at"] + timedelta(days=horizon_days) <= pd.Timestamp(now)].reset_index(drop=True)


def label_scores(matured: pd.DataFrame, labels: pd.DataFrame, horizon_days: int,
                 target: str = "opportunity") -> pd.DataFrame:
    """`matured` with `converted` (0/1), without scores of people with an opportunity open at
    `at`. `labels`: one row per opportunity (live/labels.py `LABEL_COLUMNS`)."""
    event = {"opportunity": "opportunity_created_at", "won": "won_at"}[target]
    rows = matured.reset_index(drop=True).rename_axis("row").reset_index()
    times = {column: pd.to_datetime(labels[column], utc=True) for column in (event, "opportunity_created_at",
                                                                             "closed_at")}
    pairs = rows[["row", "pid", "at"]].merge(labels[["pid"]].assign(**times), on="pid")
    horizon = pd.Timedelta(days=horizon_days)
    pairs["hit"] = (pairs[event] > pairs["at"]) & (pairs[event] <= pairs["at"] + horizon)
    pairs["open"] = (pairs["opportunity_created_at"] <= pairs["at"]) & ~(pairs["closed_at"] <= pairs["at"])
    flags = pairs.groupby("row")[["hit", "open"]].any().reindex(rows["row"], fill_value=False)
    labelled = rows.assign(converted=flags["hit"].to_numpy().astype(int))
    return labelled[~flags["open"].to_numpy()].reindex(columns=COHORT_COLUMNS).reset_index(drop=True)


def matured_cohorts(scores: pd.DataFrame, labels: pd.DataFrame, now: datetime, horizon_days: int,
                    target: str = "opportunity") -> pd.DataFrame:
    """The score log's matured scores at `now`, labelled (see the module's docstring)."""
    return label_scores(matured_scores(scores, now, horizon_days), labels, horizon_days, target)
