"""Saved segments: one JSON file per segment under `<data_dir>/segments/`.

Files are written to a temporary name and renamed, so a reader never sees half a file. An
id is generated (`seg_` and 12 hex digits) and checked against that form before it is
used as a file name, so a request cannot name a path outside the folder.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from leadscore.segments.dsl import Segment

_ID = re.compile(r"^seg_[0-9a-f]{12}$")
SUMMARY_KEYS = ("id", "name", "description", "created_at", "created_by")


class SegmentStore:
    def __init__(self, root: Path):
        self.root = root

    def _path(self, segment_id: str) -> Path:
        if not _ID.match(segment_id):
            raise KeyError(segment_id)
        return self.root / f"{segment_id}.json"

    def save(self, segment: Segment, created_by: str | None = None) -> dict:
        """Store a new segment; returns its record (id, name, ..., segment)."""
        record = {"id": f"seg_{uuid.uuid4().hex[:12]}", "name": segment.name,
                  "description": segment.description,
                  "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "created_by": created_by, "segment": segment.to_data()}
        self.root.mkdir(parents=True, exist_ok=True)
        path = self._path(record["id"])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False))
        os.replace(tmp, path)
        return record

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
