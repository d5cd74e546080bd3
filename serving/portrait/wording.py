"""The portrait's timeline in words: one line and a secondary detail per interaction, and
one line per outcome the CRM sent back.

Each event type of the closed vocabulary (config/event_types.yaml) has its phrase, filled
from the event's properties; a type without one is named in words ("something new").
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse


def _quote(text: object) -> str:
    return f"'{text}'" if text else ""


def _page(url: str | None) -> str:
    if not url:
        return "the website"
    parts = urlparse(url)
    path = parts.path.rstrip("/")
    return path if path else f"the home page ({parts.netloc})" if parts.netloc else url


def _money(value: object) -> str:
    try:
        return f"${float(value):,.0f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _form(p: dict) -> str:
    kind = (p.get("form_type") or "web").replace("_", " ")
    asset = p.get("asset")
    return f"submitted a {kind} form" + (f" for '{asset}'" if asset else "")


def _visit_detail(p: dict) -> str | None:
    bits = []
    if p.get("pageviews"):
        bits.append(f"{p['pageviews']} page{'s' if p['pageviews'] != 1 else ''}")
    if p.get("duration_s"):
        seconds = int(p["duration_s"])
        bits.append(f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s")
    if p.get("utm_source"):
        bits.append(f"via {p['utm_source']}")
    return " · ".join(bits) or None


_DESCRIBE: dict[str, Callable[[dict], str]] = {
    "web_visit": lambda p: f"visited {_page(p.get('url'))}",
    "email_send": lambda p: f"was sent email {_quote(p.get('subject'))}".rstrip(),
    "email_open": lambda p: f"opened email {_quote(p.get('subject'))}".rstrip(),
    "email_click": lambda p: f"clicked {_page(p.get('url'))} in email {_quote(p.get('subject'))}".rstrip(),
    "whitepaper_download": lambda p: f"downloaded {_quote(p.get('asset')) or 'a whitepaper'}",
    "contact_sales": lambda p: "asked sales to get in touch" + (f" ({p['asset']})" if p.get("asset") else ""),
    "form_submit": _form,
    "webinar_register": lambda p: f"registered for {_quote(p.get('event_name')) or 'a webinar'}",
    "webinar_attend": lambda p: f"attended {_quote(p.get('event_name')) or 'a webinar'}",
    "event_register": lambda p: f"registered for {_quote(p.get('event_name')) or 'an event'}",
    "event_attend": lambda p: f"attended {_quote(p.get('event_name')) or 'an event'}",
    "purchase": lambda p: f"bought {p.get('product') or 'a product'}"
                          + (f" ({_money(p.get('amount_usd'))})" if p.get("amount_usd") else ""),
}


_OUTCOMES: dict[str, Callable[[dict], str]] = {
    "opportunity_created": lambda o: f"opportunity {o['crm_id']} opened"
                                     + (f" ({_money(o['amount_usd'])})" if o.get("amount_usd") else ""),
    "stage_changed": lambda o: f"opportunity {o['crm_id']} moved to {str(o['stage']).replace('_', ' ')}",
    "won": lambda o: f"opportunity {o['crm_id']} won"
                     + (f" ({_money(o['amount_usd'])})" if o.get("amount_usd") else ""),
    "lost": lambda o: f"opportunity {o['crm_id']} lost",
}
_DISPOSITIONS = {"accepted": "sales accepted the MQL", "rejected": "sales rejected the MQL",
                 "recycled": "sales recycled the MQL to nurture"}


def describe_outcome(outcome: dict) -> str:
    """An outcome the CRM sent back (an `outcome` row of the event log) in one line."""
    if outcome["kind"] == "disposition":
        reason = outcome.get("reason")
        text = _DISPOSITIONS[outcome["disposition"]]
        return f"{text}: {reason.replace('_', ' ')}" if reason else text
    return _OUTCOMES[outcome["kind"]](outcome)


def describe_event(event_type: str, properties: dict) -> tuple[str, str | None]:
    """(one line in words, secondary detail) for an interaction."""
    describe = _DESCRIBE.get(event_type)
    text = describe(properties) if describe else event_type.replace("_", " ")
    detail = _visit_detail(properties) if event_type == "web_visit" else None
    if event_type == "email_click" and properties.get("url"):
        detail = urlparse(properties["url"]).netloc or None
    return text, detail
