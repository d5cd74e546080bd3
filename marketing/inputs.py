"""What the marketing analyses read, on one DuckDB connection.

The middle layer (read-only; `campaign`, `campaign_touch`, `campaign_invitation`,
`person_demand_tag`, `interaction`, `outcome`, `person`) plus two frames registered beside it:

- `scores(pid, scored_at, score, tier)`: every score of the champion, batch (data/scores) and
  live (the score log, shadows left out): where MQL crossings and tiers come from;
- `dispositions(pid, at, disposition)`: what sales did with pushed MQLs (POST /outcomes).

The analyses themselves take the connection, so that tests hand them a tiny world built in
memory and the benchmark a world ten times larger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.live.labels import DISPOSITION_COLUMNS, dispositions
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.score_log import SHADOW, ScoreLog

SCORE_COLUMNS = ["pid", "scored_at", "score", "tier"]
SCORE_HISTORY = "score_history.parquet"  # serving/batch.py HISTORY_FILE, in settings.scores_dir
MIDDLE_TABLES = ("campaign", "campaign_touch", "campaign_invitation", "person_demand_tag",
                 "interaction", "outcome", "person")


def batch_scores_path(settings: Settings) -> Path | None:
    """The batch score history, if scored yet."""
    path = settings.scores_dir / SCORE_HISTORY
    return path if path.is_file() else None


def read_live_scores(settings: Settings) -> pd.DataFrame:
    """The champion's scores served live (the score log, shadows left out)."""
    frames = []
    if (settings.live_dir / "scores").is_dir():
        live = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s).read()
        live = live[live["trigger"] != SHADOW].rename(columns={"at": "scored_at"})
        frames.append(live[SCORE_COLUMNS].assign(scored_at=pd.to_datetime(live["scored_at"], utc=True)))
    if not frames or frames[0].empty:
        return pd.DataFrame({"pid": pd.Series(dtype=object),
                             "scored_at": pd.Series(dtype="datetime64[us, UTC]"),
                             "score": pd.Series(dtype=float), "tier": pd.Series(dtype=object)})
    return frames[0]


def read_scores(settings: Settings) -> pd.DataFrame:
    """The champion's scores, batch and live, in one frame."""
    path = batch_scores_path(settings)
    batch = [pd.read_parquet(path, columns=SCORE_COLUMNS)] if path else []
    return pd.concat([*batch, read_live_scores(settings)], ignore_index=True)


def read_dispositions(settings: Settings) -> pd.DataFrame:
    """Every disposition the CRM sent, oldest first (none without a live event log)."""
    path = settings.live_dir / EVENT_LOG
    if not path.is_file():
        return pd.DataFrame(columns=DISPOSITION_COLUMNS)
    log = EventLog(path, settings.live.busy_timeout_s)
    try:
        return dispositions(log, datetime(2200, 1, 1, tzinfo=UTC))
    finally:
        log.close()


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the middle layer attached read-only and the scores and
    dispositions registered; a middle layer built before campaigns existed is an error that
    says to resolve again."""
    if not settings.middle_db.is_file():
        raise FileNotFoundError(f"no middle layer at {settings.middle_db}: run `leadscore identity resolve`")
    con = duckdb.connect()
    path = str(settings.middle_db).replace("'", "''")
    con.execute(f"ATTACH '{path}' AS middle (READ_ONLY)")
    con.execute("USE middle")
    present = {t for t, in con.execute("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_catalog = 'middle'").fetchall()}
    missing = [t for t in MIDDLE_TABLES if t not in present]
    if missing:
        con.close()
        raise ValueError(f"the middle layer {settings.middle_db} has no {', '.join(missing)}: it was built "
                         "before campaigns existed; run `leadscore identity resolve` again")
    register_frames(con, read_live_scores(settings), read_dispositions(settings), batch_scores_path(settings))
    return con


def register_frames(con: duckdb.DuckDBPyConnection, scores: pd.DataFrame, judged: pd.DataFrame,
                    batch_scores: Path | None = None) -> None:
    """`scores` (with the rows of the `batch_scores` Parquet file, read by DuckDB: faster than
    through pandas) and `dispositions` as temporary tables of `con`."""
    con.register("scores_df", scores[SCORE_COLUMNS])
    batch = ""
    if batch_scores is not None:
        path = str(batch_scores).replace("'", "''")
        batch = (f"SELECT pid, scored_at::TIMESTAMPTZ AS scored_at, score, tier FROM read_parquet('{path}') "
                 "UNION ALL ")
    con.execute(f"CREATE OR REPLACE TEMP TABLE scores AS {batch}"
                "SELECT pid, scored_at::TIMESTAMPTZ AS scored_at, score, tier FROM scores_df")
    con.register("dispositions_df", judged[["pid", "at", "disposition"]].assign(
        at=pd.to_datetime(judged["at"], utc=True)))
    con.execute("CREATE OR REPLACE TEMP TABLE dispositions AS SELECT * FROM dispositions_df")
    con.unregister("scores_df")
    con.unregister("dispositions_df")
