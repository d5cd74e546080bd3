"""The world's future: what the source systems record after the world's end.

`generate_world` draws the world `future_days` past its end and `split_at` cuts
every source there. The batch world (`World.sources`, data/raw) is the state of
each system at the end; the future (`World.future`, data/future) holds the rows
from the end on, each as its system would send it at its own time, in time order.
A replay clock starts at `world_end` and sends `future_records` to the service:

    future = read_future(settings.future_dir)
    for source, record in future_records(future, since, until):
        post(source, record)

What is decided after a row's time is not in it: an opportunity closed after the
end is open in the batch world (and every future opportunity is open when sent),
a registration for an event not yet held is not attended, a contact whose account
is created later has no account yet. Those later decisions are not streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .sampling import or_none
from .tables import SOURCE_IDS, SOURCE_TIMES

# source -> {column: the source whose id it holds}
REFERENCES = {
    "crm_contacts": {"account_id": "crm_accounts"},
    "opportunities": {"account_id": "crm_accounts", "contact_id": "crm_contacts"},
}
ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"


def split_at(sources: dict[str, pd.DataFrame],
             end: pd.Timestamp) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(batch, future): the rows before `end` as known at `end`, the rows from `end` on as
    known at their own time; every source is in both, possibly empty."""
    batch, future = {}, {}
    for name, frame in sources.items():
        later = (frame[SOURCE_TIMES[name]] >= end).to_numpy()
        before = frame[~later].reset_index(drop=True)
        after = frame[later].reset_index(drop=True)
        batch[name] = as_known_at(name, before, end, sources)
        future[name] = as_known_at(name, after, after[SOURCE_TIMES[name]], sources)
    return batch, future


def as_known_at(name: str, frame: pd.DataFrame, at: pd.Timestamp | pd.Series,
                sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`frame` (rows of source `name`) without what happens at or after `at` (a time, or one
    per row): no close, no attendance, no reference to an id not yet created."""
    frame = frame.copy()
    if name == "opportunities":
        undecided = (frame["closed_at"] >= at).to_numpy()
        frame["stage"] = np.where(undecided, "open", frame["stage"].to_numpy()).astype(object)
        frame["closed_at"] = frame["closed_at"].mask(undecided)
    if name == "event_registrations":
        frame["attended"] = frame["attended"].to_numpy() & (frame["event_date"] < at).to_numpy()
        if "questions_asked" in frame:  # what attendees did at the event (synth/campaigns.py)
            frame["questions_asked"] = frame["questions_asked"].where(frame["attended"], 0)
            frame["demo_requested"] = frame["demo_requested"].to_numpy() & frame["attended"].to_numpy()
    for column, target in REFERENCES.get(name, {}).items():
        created = sources[target].set_index(SOURCE_IDS[target][0])[SOURCE_TIMES[target]]
        unborn = (frame[column].map(created) >= at).to_numpy()
        frame[column] = or_none(~unborn, frame[column].to_numpy()).astype(object)
    return frame


def future_records(future: dict[str, pd.DataFrame], since: pd.Timestamp,
                   until: pd.Timestamp) -> Iterator[tuple[str, dict]]:
    """(source, record) for every future row with its time in [since, until), in time order
    across sources: JSON-ready records in the raw schema (ISO-8601 UTC times ending in 'Z',
    None for missing values, Python ints, floats and bools)."""
    names = list(future)
    times = [_utc(future[name][SOURCE_TIMES[name]]) for name in names]
    due = [future[name][(at >= _utc(since)) & (at < _utc(until))] for name, at in
           zip(names, times, strict=True)]
    at = np.concatenate([_utc(rows[SOURCE_TIMES[name]]) for name, rows in
                         zip(names, due, strict=True)])
    source = np.repeat(np.arange(len(names)), [len(rows) for rows in due])
    row = np.concatenate([np.arange(len(rows)) for rows in due])
    records = [json_records(rows) for rows in due]
    for i in np.lexsort((row, source, at)):
        yield names[source[i]], records[source[i]][row[i]]


def _utc(times: pd.Series | pd.Timestamp) -> np.ndarray | np.datetime64:
    """Comparable UTC instants, whatever the unit the frame was read with."""
    if isinstance(times, pd.Timestamp):
        return np.datetime64(times.tz_convert("UTC").tz_localize(None), "us")
    return times.dt.tz_convert(None).to_numpy().astype("datetime64[us]")


def json_records(frame: pd.DataFrame) -> list[dict]:
    """The rows of `frame` as JSON-ready dicts (see `future_records`)."""
    columns = {column: json_values(frame[column]) for column in frame.columns}
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(),
                                                                       strict=True)]


def json_values(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.strftime(ISO_UTC)
    missing = values.isna().to_numpy()
    return [None if gone else value
            for value, gone in zip(values.astype(object).tolist(), missing, strict=True)]


def read_future(future_dir: Path) -> dict[str, pd.DataFrame]:
    """The future written by `leadscore synth`: one frame per source (empty without future)."""
    paths = {name: Path(future_dir) / f"{name}.parquet" for name in SOURCE_IDS}
    missing = sorted(path.name for path in paths.values() if not path.exists())
    if missing:
        raise FileNotFoundError(f"no world future in {future_dir} (missing {', '.join(missing)}):"
                                " run `leadscore synth` first")
    return {name: pd.read_parquet(path) for name, path in paths.items()}
