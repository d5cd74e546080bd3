"""Breaches of the configured thresholds (`monitoring.thresholds`), and posting each one once.

A breach has a key naming what broke and where (`ece:champion:v3`, `feature_psi:events_30d`),
so that the same breach found again by the next `leadscore monitor` is recognised. Each is
logged and shown every time; it is POSTed to `monitoring.alert_webhook` once: the keys posted
are kept in a small file (`<data_dir>/monitoring/alerts.json`) with the clock's time each was
last seen. A breach is forgotten once it has been clear for `monitoring.alert_keep_days`, so
if it comes back later it is posted again; one that comes back sooner is the same trouble (a
figure wavering around its threshold, as Prometheus' `keep_firing_for` holds an alert), not
a new message. A post that fails is tried again at the next run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from leadscore.config import MonitoringThresholds

log = logging.getLogger(__name__)
STATE_FILE = "alerts.json"


@dataclass(frozen=True)
class Breach:
    key: str
    value: float
    threshold: float
    message: str


def _beyond(key: str, what: str, value: float | None, threshold: float | None, above: bool
            ) -> list[Breach]:
    if value is None or value != value or threshold is None:  # None or NaN: not measured
        return []
    if value <= threshold if above else value >= threshold:
        return []
    side = "above the maximum" if above else "below the minimum"
    return [Breach(key, float(value), float(threshold), f"{what}: {value:.3f}, {side} {threshold:g}")]


def model_breaches(metrics: dict[str, dict], limits: MonitoringThresholds, min_matured: int) -> list[Breach]:
    """Ranking and calibration of each model version with at least `min_matured` matured scores."""
    found: list[Breach] = []
    for version, m in metrics.items():
        if m["n"] < min_matured:
            continue
        where = f"{m['role']}:{version}"
        name = f"{m['role']} v{version}"
        found += _beyond(f"roc_auc:{where}", f"ROC-AUC of {name}", m["roc_auc"], limits.min_roc_auc, False)
        found += _beyond(f"pr_auc:{where}", f"PR-AUC of {name}", m["pr_auc"], limits.min_pr_auc, False)
        found += _beyond(f"ece:{where}", f"ECE of {name}", m["ece"], limits.max_ece, True)
    return found


def drift_breaches(features: Iterable[dict], score_psi: float | None,
                   limits: MonitoringThresholds) -> list[Breach]:
    """PSI of the score and of each feature, unknown categories, missing rates that grew."""
    found = _beyond("score_psi", "PSI of the score", score_psi, limits.max_score_psi, True)
    for row in features:
        name = row["feature"]
        found += _beyond(f"feature_psi:{name}", f"PSI of {name}", row["psi"], limits.max_feature_psi, True)
        found += _beyond(f"unknown_share:{name}", f"share of unknown categories of {name}",
                         row["unknown_share"], limits.max_unknown_share, True)
        found += _beyond(f"missing_increase:{name}", f"missing rate increase of {name}",
                         row["missing_increase"], limits.max_missing_increase, True)
    return found


def early_breaches(rows: Iterable[dict], limits: MonitoringThresholds) -> list[Breach]:
    """Early outcomes (monitoring/early.py) whose whole O/E interval lies beyond a threshold:
    a small count, whose interval is wide, does not alarm."""
    found: list[Breach] = []
    for row in rows:
        if row["oe"] is None:
            continue
        where = f"{row['role']}:{row['window_days']}d:{row['group']}"
        what = (f"early O/E of the {row['role']}'s scores of the last {row['window_days']} days "
                f"({row['group']}: {row['observed']} opportunities, {row['expected']:.1f} expected, "
                f"interval {row['low']:.2f}-{row['high']:.2f})")
        if limits.max_early_oe_ratio is not None and row["low"] > limits.max_early_oe_ratio:
            found += _beyond(f"early_oe:{where}", what, row["oe"], limits.max_early_oe_ratio, True)
        if limits.min_early_oe_ratio is not None and row["high"] < limits.min_early_oe_ratio:
            found += _beyond(f"early_oe:{where}", what, row["oe"], limits.min_early_oe_ratio, False)
    return found


def arrival_breaches(watch: dict, limits: MonitoringThresholds) -> list[Breach]:
    """The arrivals' CUSUM (monitoring/arrivals.py) beyond its decision interval, for more
    opportunities a day (`arrivals_up`) or fewer (`arrivals_down`): two kinds of breach,
    since a rate that fell says nothing of one that rises."""
    found: list[Breach] = []
    for side, word in (("up", "more"), ("down", "fewer")):
        what = (f"CUSUM of {word} opportunities a day ({watch['observed']} in the last "
                f"{watch['window_days']} days, {watch['expected'] or 0:.1f} at the rate of the "
                f"{watch['reference_days']} days before)")
        found += _beyond(f"arrivals_{side}", what, watch[side], limits.max_arrival_cusum, True)
    return found


def operations_breaches(operations: dict, limits: MonitoringThresholds) -> list[Breach]:
    """Quarantined records, MQLs rejected by sales, CRM messages given up on."""
    return [*_beyond("quarantine_rate", "share of ingested records quarantined",
                     operations["ingest"]["quarantine_rate"], limits.max_quarantine_rate, True),
            *_beyond("rejection_rate", "share of judged MQLs rejected by sales",
                     operations["dispositions"]["rejection_rate"], limits.max_rejection_rate, True),
            *_beyond("webhook_failures", "CRM messages failed after every retry",
                     operations["webhook"]["mql"]["failed"] + operations["webhook"]["daily_digest"]["failed"],
                     limits.max_webhook_failures, True)]


class AlertState:
    """The breaches posted and not yet forgotten, each with the clock's time it was last seen (a
    JSON object, replaced whole on each write; a list of keys, the format before, reads as
    seen at the next run's time)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / STATE_FILE

    def _saved(self) -> dict[str, str] | list[str]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def last_seen(self, now: datetime) -> dict[str, datetime]:
        saved = self._saved()
        if isinstance(saved, list):
            return dict.fromkeys(saved, now)
        return {key: _seen_before(datetime.fromisoformat(at), now) for key, at in saved.items()}

    def posted(self) -> set[str]:
        return set(self._saved())

    def save(self, last_seen: dict[str, datetime]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({key: last_seen[key].isoformat() for key in sorted(last_seen)}))
        os.replace(tmp, self.path)


def _seen_before(seen: datetime, now: datetime) -> datetime:
    """A saved time read against `now`: in UTC where one of the two has no zone, and no later
    than `now` (a clock placed back would otherwise keep a cleared breach quiet that much longer)."""
    if seen.tzinfo is None and now.tzinfo is not None:
        seen = seen.replace(tzinfo=UTC)
    elif seen.tzinfo is not None and now.tzinfo is None:
        seen = seen.astimezone(UTC).replace(tzinfo=None)
    return min(seen, now)


def post_new_breaches(breaches: list[Breach], state: AlertState, url: str | None, now: datetime,
                      timeout_s: float = 5, keep_days: float = 0) -> list[str]:
    """Log every breach; POST those not posted before to `url` (one JSON message), remember
    them, forget those clear for `keep_days` (0: as soon as they clear). Returns the keys
    posted now."""
    for breach in breaches:
        log.warning("monitoring breach: %s", breach.message)
    before = state.last_seen(now)
    current = {breach.key for breach in breaches}
    new = [breach for breach in breaches if breach.key not in before]
    posted = new if url and new and _post(url, new, now, timeout_s) else []
    keep = timedelta(days=keep_days)
    remembered = {key: seen for key, seen in before.items() if key not in current and now - seen < keep}
    seen_now = (current & set(before)) | {breach.key for breach in posted}
    state.save(remembered | dict.fromkeys(seen_now, now))
    return [breach.key for breach in posted]


def _post(url: str, breaches: list[Breach], now: datetime, timeout_s: float) -> bool:
    body = {"type": "leadscore_monitoring_alert", "at": now.isoformat(),
            "breaches": [asdict(breach) for breach in breaches]}
    try:
        httpx.post(url, json=body, timeout=timeout_s).raise_for_status()
    except httpx.HTTPError as error:
        log.error("could not post %d breach(es) to the alert webhook %s: %s (tried again next run)",
                  len(breaches), url, error)
        return False
    return True
