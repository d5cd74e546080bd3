"""The daily digest: per sales owner, their leads that became active during a day (pure).

A lead became active on a day when its last score served that day (the score log) is in
one of `digest.tiers` (new high-value or high-potential) and its last score before the day
was not, or when its score rose by at least `digest.min_score_rise` points from that last
score before the day (engagement up sharply). One message per owner and day, pushed
through the webhook outbox like an MQL; its idempotency key is the owner and the day, so
every worker may build it and the CRM gets it once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date

import pandas as pd

from leadscore.config import DigestSettings
from leadscore.serving.webhook.outbox import Message


def digest_key(owner: str, day: date) -> str:
    return "digest-" + hashlib.sha256(f"{owner}|{day.isoformat()}".encode()).hexdigest()[:24]


def active_leads(day_scores: pd.DataFrame, before: pd.DataFrame, settings: DigestSettings) -> pd.DataFrame:
    """pid, score, tier, previous_score, previous_tier, why: the leads that became active.
    `day_scores`: the day's score log; `before`: each pid's last logged score before it."""
    if day_scores.empty:
        return pd.DataFrame(columns=["pid", "score", "tier", "previous_score", "previous_tier", "why"])
    last = day_scores.sort_values("at", kind="stable").groupby("pid").tail(1).set_index("pid")
    previous = before.set_index("pid").reindex(last.index)
    new_tier = last["tier"].isin(settings.tiers) & ~previous["tier"].isin(settings.tiers)
    risen = (last["score"] - previous["score"]) >= settings.min_score_rise
    why = pd.Series(None, index=last.index, dtype="object")
    why = why.mask(risen, "score up " + (last["score"] - previous["score"]).round(1).astype(str) + " points")
    why = why.mask(new_tier, "now " + last["tier"].astype(str))
    leads = pd.DataFrame({"score": last["score"], "tier": last["tier"], "previous_score": previous["score"],
                          "previous_tier": previous["tier"], "why": why})[new_tier | risen]
    return leads.rename_axis("pid").reset_index()


def digest_messages(leads: pd.DataFrame, owners: Mapping[str, str | None], day: date) -> list[Message]:
    """One message per owner with their active leads, best score first; leads without an owner
    (or not in `owners`) are left out (nobody to tell)."""
    leads = leads.assign(owner=[owners.get(pid) for pid in leads["pid"]]).dropna(subset=["owner"])
    messages = []
    for owner, own in leads.sort_values("score", ascending=False).groupby("owner", sort=True):
        rows = own.drop(columns="owner").astype(object).where(own.drop(columns="owner").notna(), None)
        payload = {"type": "daily_digest", "owner_rep_id": owner, "day": day.isoformat(),
                   "leads": rows.to_dict("records")}
        messages.append(Message(digest_key(owner, day), str(own["pid"].iloc[0]), json.dumps(payload)))
    return messages
