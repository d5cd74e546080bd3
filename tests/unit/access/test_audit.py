"""The audit log keeps every read as one line, whatever the text it holds."""

from __future__ import annotations

from leadscore.access.audit import AuditLog
from leadscore.access.auth import Caller


def test_an_entry_holding_a_line_separator_of_unicode_reads_back_as_one(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    caller = Caller("demo-admin", "admin", "E1", frozenset({"audit"}), own_accounts_only=False,
                    reveal_pii=True)
    log.record(caller, "segment", None, 404, detail={"id": "seg\x85ment\u2028x"})
    log.record(caller, "portrait", "P1", 200)
    entries = log.entries()
    assert [entry["action"] for entry in entries] == ["segment", "portrait"]
    assert entries[0]["detail"] == {"id": "seg\x85ment\u2028x"}
