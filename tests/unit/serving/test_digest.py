"""The daily digest: leads newly in a top tier or sharply up, one message per owner and day."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from leadscore.config import DigestSettings
from leadscore.serving.webhook.digest import active_leads, digest_key, digest_messages

DAY = date(2026, 11, 3)


def _scores(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["at", "pid", "score", "tier"]).assign(
        at=lambda f: pd.to_datetime(f["at"], utc=True))


def test_new_top_tier_or_a_sharp_rise_makes_a_lead_active():
    yesterday, morning, evening = "2026-11-02T10:00Z", "2026-11-03T09:00Z", "2026-11-03T16:00Z"
    before = _scores([(yesterday, "P1", 55, "to-verify"), (yesterday, "P2", 80, "high-value"),
                      (yesterday, "P3", 30, "to-nurture"), (yesterday, "P4", 40, "to-nurture")])
    day = _scores([(morning, "P1", 71, "high-value"), (morning, "P2", 82, "high-value"),
                   (morning, "P3", 35, "to-nurture"), (evening, "P3", 48, "to-verify"),
                   (morning, "P4", 50, "to-verify"), (evening, "P4", 41, "to-nurture")])
    leads = active_leads(day, before, DigestSettings()).set_index("pid")
    assert set(leads.index) == {"P1", "P3"}  # P2 was high-value already; P4's last score fell back
    assert leads.loc["P1", "why"] == "now high-value"
    assert leads.loc["P3", "why"].startswith("score up 18")


def test_one_message_per_owner_and_day_with_a_stable_key():
    leads = pd.DataFrame({"pid": ["P1", "P2", "P3"], "score": [71.0, 90.0, 50.0],
                          "tier": ["high-value"] * 3, "previous_score": [55.0, None, 40.0],
                          "previous_tier": [None] * 3, "why": ["x"] * 3})
    owners = {"P1": "R001", "P2": "R001", "P3": None}
    messages = digest_messages(leads, owners, DAY)
    assert len(messages) == 1 and messages[0].key == digest_key("R001", DAY)
    body = json.loads(messages[0].payload)
    assert body["type"] == "daily_digest" and [lead["pid"] for lead in body["leads"]] == ["P2", "P1"]
    assert digest_messages(leads, owners, DAY)[0].key == messages[0].key  # idempotent
