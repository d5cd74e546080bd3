"""The challenger's scores in shadow, computed off the request path, in batches.

A challenger scores every row the champion serves, and the score log keeps its scores
(trigger `shadow`) for monitoring to compare with the champion's once outcomes mature
(monitoring/promotion.py). Scored on the request, a LightGBM challenger doubled a /score's
cost, and a logistic regression one multiplied it by 20: its scikit-learn pipeline costs
about 25 ms a call whether for 1 row or 1,000. So the rows served wait in a queue, and a
thread of the worker's scores what has gathered every `flush_s` seconds, in one call per
challenger version, and logs each score at the instant its row was served (a group commit
that lingers, live/group_commit.py).

Nothing served waits for it. A crash loses at most the last `flush_s` of shadow scores,
never served: the evidence for a promotion only grows a little more slowly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from leadscore.live.group_commit import GroupCommit

if TYPE_CHECKING:  # the service imports this module at start: no pandas or LightGBM before it needs them
    from leadscore.live.score_log import ScoreLog
    from leadscore.serving.scorer import Columns, Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowRows:
    """Rows the champion scored, for `scorer` (the challenger) to score in shadow."""

    scorer: Scorer
    pids: list[str | None]
    columns: Columns
    times: list[str | None]


_Call = tuple[ShadowRows, datetime] | None  # rows and when they were served; None: a flush


class ShadowScoring:
    """The rows served, gathered for `flush_s` seconds (or `max_rows` rows) and scored in shadow
    by a thread of the worker's, the scores logged."""

    def __init__(self, score_log: ScoreLog, flush_s: float, max_rows: int) -> None:
        self._score_log = score_log
        self._group = GroupCommit(self._score_and_log, _rows_of, max_rows, name="shadow-scoring",
                                  linger_s=flush_s)

    def add(self, rows: ShadowRows, served_at: datetime) -> None:
        """Score `rows` in shadow soon, logged at `served_at`; returns at once."""
        if rows.pids:
            self._group.post((rows, served_at))

    def flush(self) -> None:
        """Wait until every row added before this call is scored and logged."""
        self._group.submit(None)

    def close(self) -> None:
        """Score and log what is queued, then stop."""
        self._group.close()

    def _score_and_log(self, calls: Sequence[_Call]) -> list[None]:
        from leadscore.live.score_log import SHADOW

        by_scorer: dict[int, list[tuple[ShadowRows, datetime]]] = {}
        for served in calls:
            if served is not None:
                by_scorer.setdefault(id(served[0].scorer), []).append(served)
        for parts in by_scorer.values():
            scorer = parts[0][0].scorer
            pids = [pid for rows, _ in parts for pid in rows.pids]
            try:
                records = scorer.shadow_records(
                    pids, {name: [value for rows, _ in parts for value in rows.columns[name]]
                           for name in scorer.feature_names},
                    [t for rows, _ in parts for t in rows.times])
                self._score_log.append_each(records, [at for rows, at in parts for _ in rows.pids],
                                            [SHADOW] * len(records))
            except Exception:  # noqa: BLE001 - a shadow score never fails what was served
                log.exception("could not score or log %d rows in shadow with challenger version %s",
                              len(pids), scorer.version)
        return [None] * len(calls)


def _rows_of(served: _Call) -> int:
    return 0 if served is None else len(served[0].pids)
