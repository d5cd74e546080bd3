"""Operations: what the loop did with the scores, in the clock's last `window_days`.

- MQLs pushed to the CRM and what became of the messages (serving's webhook outbox: pending,
  delivered, failed, i.e. given up after every retry). The outbox is serving's SQLite file,
  read here as data (monitoring imports nothing of serving); its times are the wall clock's,
  so these counts are of all messages, not of the window.
- what sales did with pushed MQLs (accepted, rejected with each reason, recycled), from the
  CRM's dispositions in the event log;
- the share of ingested records quarantined.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd

OUTBOX_FILE = "webhook.sqlite"  # serving/webhook/outbox.py DB_NAME, in settings.serving_dir
OUTBOX_STATUSES = ("pending", "sending", "delivered", "failed")


def outbox_counts(path: Path) -> dict[str, dict[str, int]]:
    """Messages by kind (`mql`, `daily_digest`) and status; zeros when nothing was ever queued."""
    counts = {kind: dict.fromkeys(OUTBOX_STATUSES, 0) for kind in ("mql", "daily_digest")}
    if not path.is_file():
        return counts
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT payload, status FROM outbox").fetchall()
    finally:
        con.close()
    for payload, status in rows:
        kind = "daily_digest" if json.loads(payload).get("type") == "daily_digest" else "mql"
        counts[kind][status] += 1
    return counts


def disposition_counts(dispositions: pd.DataFrame) -> dict:
    """Accepted, rejected (and by reason), recycled, and the rejection rate among the judged
    (rejected / (accepted + rejected); None before any)."""
    by = dispositions["disposition"].value_counts()
    accepted, rejected = int(by.get("accepted", 0)), int(by.get("rejected", 0))
    reasons = dispositions.loc[dispositions["disposition"] == "rejected", "reason"].value_counts()
    return {"accepted": accepted, "rejected": rejected, "recycled": int(by.get("recycled", 0)),
            "rejection_reasons": {str(k): int(v) for k, v in reasons.items()},
            "rejection_rate": rejected / (accepted + rejected) if accepted + rejected else None}


def quarantine_counts(by_status: dict[str, int]) -> dict:
    """Records kept and quarantined, and the quarantined share (None before any record)."""
    kept, quarantined = by_status.get("kept", 0), by_status.get("quarantined", 0)
    total = kept + quarantined
    return {"kept": kept, "quarantined": quarantined,
            "quarantine_rate": quarantined / total if total else None}
