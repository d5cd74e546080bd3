"""Browser sessions, server-side: /login trades an API key for a random token, /logout revokes it.

The session cookie holds only the token (`secrets.token_urlsafe`), never the key: a token is
not a key (it is refused as `X-API-Key`), it ends at its expiry (serving.session_hours), and
logout deletes it, so a cookie copied before logout opens nothing afterwards. The table is one
SQLite file (WAL) beside the service, `<data_dir>/serving/sessions.sqlite`, so that every worker
process of `leadscore serve` sees a session another opened or closed. It keeps SHA-256 digests
only: of the token (a copy of the file signs no one in) and of the key (the caller is looked up
in the access list at each request, so a key removed from config/access.yaml ends its sessions
at the next start). A connection per call: sessions are few (a sign-in, then a page's requests),
and a connection is never shared between threads.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from leadscore.access.auth import sha256_hex

DB_NAME = "sessions.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    token_sha256  TEXT PRIMARY KEY,
    key_sha256    TEXT NOT NULL,
    expires_at    REAL NOT NULL   -- Unix seconds
)"""


class SessionStore:
    """The open sessions of `<state_dir>/sessions.sqlite`, each valid for `ttl_s` seconds."""

    def __init__(self, state_dir: Path, ttl_s: float, busy_timeout_s: float = 10.0):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / DB_NAME
        self.ttl_s = ttl_s
        self._busy_timeout_s = busy_timeout_s
        with self._connection() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call, committed (or rolled back) and closed at the end."""
        with closing(sqlite3.connect(self.path, timeout=self._busy_timeout_s)) as con, con:
            yield con

    def open(self, key_sha256: str) -> str:
        """A new session for the key of this digest; returns its token (for the cookie only).
        Expired sessions are dropped on the way."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._connection() as con:
            con.execute("DELETE FROM session WHERE expires_at <= ?", (now,))
            con.execute("INSERT INTO session VALUES (?, ?, ?)",
                        (sha256_hex(token), key_sha256, now + self.ttl_s))
        return token

    def key_digest(self, token: str) -> str | None:
        """The digest of the key a live session was opened with; None if the token is unknown,
        expired or revoked."""
        with self._connection() as con:
            row = con.execute("SELECT key_sha256 FROM session WHERE token_sha256 = ? AND expires_at > ?",
                              (sha256_hex(token), time.time())).fetchone()
        return row[0] if row else None

    def revoke(self, token: str) -> None:
        """End the session of `token` (nothing happens for an unknown one)."""
        with self._connection() as con:
            con.execute("DELETE FROM session WHERE token_sha256 = ?", (sha256_hex(token),))
