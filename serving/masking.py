"""Masking of personal data for portraits, previews and exports.

Masked by default: enough left to recognise a contact ("138****8000",
"j***@example.com"), not enough to use it. Only roles allowed to (config/access.yaml)
see the full values, and every read is audited.
"""

from __future__ import annotations

import re

_DIGIT = re.compile(r"\d")

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
