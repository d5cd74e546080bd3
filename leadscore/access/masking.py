"""Masking of personal data for portraits, previews and exports.

Masked by default: enough left to recognise a contact ("138****8000",
"j***@example.com"), not enough to use it. Only roles allowed to (config/access.yaml)
see the full values, and every read is audited.
"""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-]+)(@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")  # also URL-encoded

# The fields of a person that are personal data, and how each is masked.
PII_FIELDS = ("email", "phone")


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits of the national number: 138****8000.

    A leading country code (+86) is kept as is; separators are dropped.
    """
    if not phone:
        return phone
    digits = "".join(_DIGIT.findall(phone))
    prefix = ""
    if phone.strip().startswith("+") and len(digits) > 11:
        prefix, digits = "+" + digits[:len(digits) - 11], digits[len(digits) - 11:]
    if len(digits) <= 7:
        return prefix + "*" * len(digits)
    return f"{prefix}{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def mask_email(email: str | None) -> str | None:
    """Keep the first letter of the local part and the domain: j***@example.com."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    if not at:
        return local[:1] + "***"
    return f"{local[:1]}***@{domain}"


MASKS = {"email": mask_email, "phone": mask_phone}


def mask_record(record: dict, full: bool = False) -> dict:
    """A copy of `record` with its PII fields masked, unless `full`."""
    if full:
        return dict(record)
    return {key: MASKS[key](value) if key in MASKS else value for key, value in record.items()}


def mask_emails_in(value: object) -> object:
    """`value` (text, or lists and dicts of it) with every email address in it masked."""
    if isinstance(value, str):
        return _EMAIL.sub(lambda m: f"{m.group(1)[:1]}***{m.group(2)}{m.group(3)}", value)
    if isinstance(value, dict):
        return {key: mask_emails_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_emails_in(item) for item in value]
    return value
