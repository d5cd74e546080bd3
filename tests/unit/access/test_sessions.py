"""Browser sessions: a random token per sign-in, shared by every process, ended by expiry or logout."""

from __future__ import annotations

import time

from leadscore.access.auth import sha256_hex
from leadscore.access.sessions import SessionStore


def test_a_session_is_a_random_token_that_names_the_keys_digest_only(tmp_path):
    store = SessionStore(tmp_path, ttl_s=60)
    first, second = store.open(sha256_hex("demo-admin-key")), store.open(sha256_hex("demo-admin-key"))
    assert first != second and len(first) >= 40 and "demo" not in first
    assert store.key_digest(first) == sha256_hex("demo-admin-key")
    assert store.key_digest("made-up") is None
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("sessions.sqlite*"))
    assert first.encode() not in stored and b"demo-admin-key" not in stored  # digests only


def test_another_process_sees_a_session_opened_and_revoked_by_one(tmp_path):
    one, other = SessionStore(tmp_path, ttl_s=60), SessionStore(tmp_path, ttl_s=60)
    token = one.open(sha256_hex("k"))
    assert other.key_digest(token) == sha256_hex("k")
    other.revoke(token)
    assert one.key_digest(token) is None and other.key_digest(token) is None


def test_a_session_ends_at_its_expiry(tmp_path):
    store = SessionStore(tmp_path, ttl_s=0.2)
    token = store.open(sha256_hex("k"))
    assert store.key_digest(token) is not None
    time.sleep(0.3)
    assert store.key_digest(token) is None
