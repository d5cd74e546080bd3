"""API keys to callers with roles (config/access.yaml), checked on every request.

A key arrives as `X-API-Key` or as `Authorization: Bearer ...`. The pages a browser opens
send instead the `leadscore_session` cookie set by /login, which holds a session's token,
never the key (sessions.py). No key, an unknown key or a session that ended is 401; a known
key whose role may not use the endpoint is 403.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.config import load_yaml

PERMISSIONS = ("score", "portrait", "segments", "ingest", "outcomes", "metrics", "monitor", "personalize",
               "dashboard")
COOKIE = "leadscore_session"  # a session token (sessions.py), never a key


class AuthError(Exception):
    """Refused: `status` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid")

    can: list[str] = Field(default_factory=list)
    own_accounts_only: bool = False
    reveal_pii: bool = False

    @model_validator(mode="after")
    def _known_permissions(self) -> Role:
        unknown = sorted(set(self.can) - set(PERMISSIONS))
        if unknown:
            raise ValueError(f"unknown permission(s) {unknown}; valid: {list(PERMISSIONS)}")
        return self


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    name: str = ""
    employee_id: str = ""
    key: str | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError(f"key entry {self.name or self.employee_id!r}: give exactly one of "
                             "`key` or `sha256`")
        return self

    @property
    def digest(self) -> str:
        return self.sha256.lower() if self.sha256 else sha256_hex(self.key or "")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the role's rights and the employee id shown as a watermark."""

    name: str
    role: str
    employee_id: str
    can: frozenset[str]
    own_accounts_only: bool
    reveal_pii: bool

    def require(self, permission: str) -> None:
        if permission not in self.can:
            raise AuthError(403, f"role {self.role!r} may not use {permission} endpoints "
                                 f"(it may use: {', '.join(sorted(self.can)) or 'nothing'})")

    @property
    def account_scope(self) -> str | None:
        """The rep whose accounts alone this caller may see (a sales rep's own id); None: every account."""
        return self.employee_id if self.own_accounts_only else None

    def may_see_account_of(self, owner_rep_id: str | None) -> bool:
        return not self.own_accounts_only or (owner_rep_id is not None
                                              and owner_rep_id == self.employee_id)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class AccessList:
    """The keys of config/access.yaml, looked up by their SHA-256 digest."""

    def __init__(self, roles: dict[str, Role], keys: list[KeyEntry]):
        missing = sorted({entry.role for entry in keys} - set(roles))
        if missing:
            raise ValueError(f"keys use undefined role(s) {missing}; defined: {sorted(roles)}")
        self.roles = roles
        self._by_digest = {entry.digest: entry for entry in keys}

    @classmethod
    def load(cls, path: Path) -> AccessList:
        raw = load_yaml(path)
        try:
            roles = {name: Role(**spec) for name, spec in (raw.get("roles") or {}).items()}
            return cls(roles, [KeyEntry(**entry) for entry in raw.get("keys") or []])
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from None

    def caller(self, key: str | None) -> Caller:
        """The caller holding `key`, or AuthError 401."""
        if not key:
            raise AuthError(401, "no API key: send the header `X-API-Key: <key>` "
                                 "(keys and roles are in config/access.yaml)")
        entry = self._by_digest.get(sha256_hex(key))
        if entry is None:
            raise AuthError(401, "unknown API key (keys and roles are in config/access.yaml)")
        return self._caller(entry)

    def caller_of_session(self, key_sha256: str | None) -> Caller:
        """The caller of a browser session, by the digest of the key it was opened with
        (SessionStore.key_digest); AuthError 401 when the session ended or its key is gone."""
        entry = self._by_digest.get(key_sha256 or "")
        if entry is None:
            raise AuthError(401, "your session has ended (signed out or expired): sign in again at /login")
        return self._caller(entry)

    def _caller(self, entry: KeyEntry) -> Caller:
        role = self.roles[entry.role]
        return Caller(name=entry.name, role=entry.role, employee_id=entry.employee_id,
                      can=frozenset(role.can), own_accounts_only=role.own_accounts_only,
                      reveal_pii=role.reveal_pii)


def key_from_headers(headers: dict[str, str] | object) -> str | None:
    """The API key of a request: X-API-Key, then a Bearer token. A session cookie is no key."""
    key = headers.get("x-api-key")  # type: ignore[union-attr]
    if key:
        return key
    scheme, _, token = (headers.get("authorization") or "").partition(" ")  # type: ignore[union-attr]
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return None
