"""Access: who may read what, shared by serving and segments (which never import each other).

API keys and roles from config/access.yaml, and the caller a key or a session cookie
stands for (auth.py); the server-side sessions of browsers signed in at /login
(sessions.py); masking of personal data (masking.py); the audit log of personal-data
reads (audit.py). It knows no stage: the stages import it, never the other way round.
"""

from leadscore.access.audit import AuditLog
from leadscore.access.auth import COOKIE, AccessList, AuthError, Caller, key_from_headers
from leadscore.access.masking import PII_FIELDS, mask_emails_in, mask_record
from leadscore.access.sessions import SessionStore

__all__ = [
    "COOKIE",
    "PII_FIELDS",
    "SessionStore",
    "AccessList",
    "AuditLog",
    "AuthError",
    "Caller",
    "key_from_headers",
    "mask_emails_in",
    "mask_record",
]
