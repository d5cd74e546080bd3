"""Masking of personal data for portraits, previews and exports.

Masked by default: enough left to recognise a contact ("138****8000",
"j***@example.com"), not enough to use it. Only roles allowed to (config/access.yaml)
see the full values, and every read is audited.
"""

from __future__ import annotations

import re
from typing import overload

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(r"([A-Za-z0-9._%+-]+)(@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")  # also URL-encoded

# The fields of a person that are personal data, and how each is masked.
PII_FIELDS = ("email", "phone")


def mask_phone(phone: str | None) -> str | None:
    """One rule whatever the number's format: the national number's first three and last four
    digits, 138****8000. A country code is dropped, so that one number written as
    +86 138 0013 8000, 0086-13800138000 or 138-0013-8000 masks alike (and no masked value
    starts with `+`, which a spreadsheet reads as a formula)."""
    if not phone:
        return phone
    digits = _national_digits(phone)
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"


def _national_digits(phone: str) -> str:
    """The digits of the national number: a number written with its country code (+86, 0086)
    loses it (by the `phonenumbers` library's plan of each country); one without keeps all."""
    digits = "".join(_DIGIT.findall(phone))
    written = phone.strip()
    if not (written.startswith("+") or written.startswith("00")):
        return digits
    import phonenumbers  # here: the service's supervisor imports this module and needs no phones

    try:
        number = phonenumbers.parse("+" + digits.removeprefix("00") if written.startswith("00")
                                    else "+" + digits, None)
    except phonenumbers.NumberParseException:
        return digits
    return phonenumbers.national_significant_number(number) or digits


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


@overload
def mask_emails_in(value: dict) -> dict: ...
@overload
def mask_emails_in(value: object) -> object: ...
def mask_emails_in(value: object) -> object:
    """`value` (text, or lists and dicts of it) with every email address in it masked."""
    if isinstance(value, str):
        return _EMAIL.sub(lambda m: f"{m.group(1)[:1]}***{m.group(2)}{m.group(3)}", value)
    if isinstance(value, dict):
        return {key: mask_emails_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_emails_in(item) for item in value]
    return value
