"""The audit log of personal-data reads: one JSON line per portrait read.

Who (key name, role, employee id), when, which pid, which fields (and whether
masked or in full), and the answer given (200, 403, 404). Appended with a single
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


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, caller: Caller, action: str, pid: str, status: int,
               fields: list[str] | None = None) -> dict:
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "who": caller.name,
                 "role": caller.role, "employee_id": caller.employee_id, "action": action,
                 "pid": pid, "status": status, "fields": fields or []}
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
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
