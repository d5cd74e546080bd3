"""The audit log of personal-data reads: one JSON line per portrait, segment preview or export.

Who (key name, role, employee id), when, which pid, which fields (and whether
masked or in full), the answer given (200, 403, 404, 422), and what else tells the read
apart (`detail`: the segment, the members shown). What a caller sent is capped before it
is written (`MAX_TEXT` characters a value, `MAX_ITEMS` a list), so that no request can
write a line of any length: a 60 KB pid was once written whole. Appended with a single
`write` on a file opened with O_APPEND, so lines from several worker processes never
interleave; never rewritten by the service.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from leadscore.access.auth import Caller

MAX_TEXT = 64  # characters of one value a caller sent (a pid, a segment's name): PIDs are 11
MAX_ITEMS = 100  # values of one list (a preview's members: at most 100)


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, caller: Caller, action: str, pid: str | None, status: int,
               fields: list[str] | None = None, detail: dict | None = None) -> dict:
        """Append one entry; `pid` is None for a read of many people (a segment's)."""
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "who": caller.name,
                 "role": caller.role, "employee_id": caller.employee_id, "action": action,
                 "pid": _capped(pid), "status": status, "fields": fields or []}
        if detail:
            entry["detail"] = _capped(detail)
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return entry

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        # lines end at "\n" only: an entry holds its text as sent (ensure_ascii=False), and
        # str.splitlines would also split inside one at \x85 or \u2028
        return [json.loads(line) for line in self.path.read_text().split("\n") if line.strip()]


def _capped(value: object) -> object:
    """`value` with each text cut to MAX_TEXT characters and each list to MAX_ITEMS items, the
    cut marked with how much there was."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f"{value[:MAX_TEXT]}... ({len(value):,} characters)"
    if isinstance(value, dict):
        return {key: _capped(item) for key, item in value.items()}
    if isinstance(value, list):
        kept = [_capped(item) for item in value[:MAX_ITEMS]]
        return kept + [f"... ({len(value):,} items)"] if len(value) > MAX_ITEMS else kept
    return value
