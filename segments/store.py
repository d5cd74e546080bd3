"""Saved segments: one JSON file per segment under `<data_dir>/segments/`.

Files are written to a temporary name and renamed, so a reader never sees half a file. An
id is generated (`seg_` and 12 hex digits) and checked against that form before it is
used as a file name, so a request cannot name a path outside the folder. A name is unique
(compared without case and outer spaces; unnamed segments are many): the check and the
write happen under a lock on the folder (`flock`), which every worker process takes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from leadscore.segments.dsl import Segment

_ID = re.compile(r"^seg_[0-9a-f]{12}$")
SUMMARY_KEYS = ("id", "name", "description", "created_at", "created_by")


class NameTaken(Exception):
    """A segment of this name is saved already: `existing` is its summary."""

    def __init__(self, existing: dict):
        super().__init__(existing["name"])
        self.existing = existing


def _same_name(name: str) -> str:
    return name.strip().casefold()


class SegmentStore:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, segment_id: str) -> Path:
        if not _ID.match(segment_id):
            raise KeyError(segment_id)
        return self.root / f"{segment_id}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The folder to this caller alone, across threads and processes, while names are compared."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def save(self, segment: Segment, created_by: str | None = None) -> dict:
        """Store a new segment; returns its record (id, name, ..., segment). NameTaken when a
        segment of its name is saved already."""
        segment_id = f"seg_{uuid.uuid4().hex[:12]}"
        record = {"id": segment_id, "name": segment.name,
                  "description": segment.description,
                  "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "created_by": created_by, "segment": segment.to_data()}
        with self._locked():
            existing = self.named(segment.name)
            if existing is not None:
                raise NameTaken(existing)
            path = self._path(segment_id)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False))
            os.replace(tmp, path)
        return record

    def named(self, name: str) -> dict | None:
        """The summary of the segment saved under `name`, if any (never one without a name)."""
        if not _same_name(name):
            return None
        return next((s for s in self.list() if _same_name(s["name"] or "") == _same_name(name)), None)

    def delete(self, id_or_name: str) -> dict:
        """Remove a saved segment, named by its id or its name; returns its summary. KeyError
        when there is none."""
        with self._locked():
            found: dict | None = (self.named(id_or_name) if not _ID.match(id_or_name)
                                  else {key: self.get(id_or_name).get(key) for key in SUMMARY_KEYS})
            if found is None:
                raise KeyError(id_or_name)
            self._path(found["id"]).unlink()
        return found

    def get(self, segment_id: str) -> dict:
        """The record of a saved segment; KeyError when there is none."""
        path = self._path(segment_id)
        if not path.is_file():
            raise KeyError(segment_id)
        return json.loads(path.read_text())

    def list(self) -> list[dict]:
        """Summaries of every saved segment, newest first."""
        records = [json.loads(path.read_text()) for path in self.root.glob("seg_*.json")]
        summaries = [{key: record.get(key) for key in SUMMARY_KEYS} for record in records]
        return sorted(summaries, key=lambda s: (s["created_at"] or "", s["id"]), reverse=True)
