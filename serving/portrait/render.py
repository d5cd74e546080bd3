"""The portrait's HTML page: serving/templates/portrait.html, filled from a `Portrait`.

The page groups the timeline by month, the tags by kind, draws the charts (charts.py) and
formats values with the filters here (`when`, `ago`, `number`, `money`, `words`, `signed`). The JSON has
every opportunity; the page shows the first `MAX_OPPORTUNITIES_SHOWN`.

The page is tabs of plain HTML and CSS (radio buttons, no script) under a header (the person,
the activity tiles, the score on its two axes): the header and the summary tab (the reasons'
waterfall, the fit x interest chart, the next step) fit one screen of 1280 x 1000, then the
profile, the colleagues, the timeline and the history. The score card
includes `_account_score.html`: the account's score beside the lead's, in one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache

import jinja2

from leadscore.clock import ago
from leadscore.features.catalog import category_words
from leadscore.scoring.spec import DEFAULT_TIER_COLOUR, TierTable
from leadscore.serving.pages import template_environment
from leadscore.serving.portrait.charts import DOWN, UP, axes_chart, history_chart, signed, waterfall
from leadscore.serving.portrait.schemas import Opportunity, Portrait, Tag, TimelineEvent

MAX_OPPORTUNITIES_SHOWN = 12


def _months(timeline: list[TimelineEvent]) -> list[dict]:
    months: list[dict] = []
    for e in timeline:
        label = f"{e.event_time:%B %Y}"
        if not months or months[-1]["label"] != label:
            months.append({"label": label, "events": [], "engaged": 0})
        months[-1]["events"].append(e)
        months[-1]["engaged"] += not e.passive
    return months


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(fmt)


def _ago(value: datetime | None, now: datetime | None) -> str:
    """'just now', '5 minutes ago', '3 hours ago', '2 days ago' (from the clock's now)."""
    if value is None or now is None:
        return ""
    return ago((now - value).total_seconds())


def _number(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


def _money_short(value: float | None) -> str:
    if value is None:
        return "—"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"${value / limit:,.1f}{suffix}"
    return f"${value:,.0f}"


def _words(value: str | None) -> str:
    """A category as the reasons write it ('series E or later', 'IT'), '—' when unknown."""
    return category_words(value) if value else "—"


@cache
def portrait_environment() -> jinja2.Environment:
    return template_environment(when=_when, ago=_ago, number=_number, money=_money_short, words=_words,
                                signed=signed)


def render_portrait_html(portrait: Portrait, viewer_employee_id: str, tier_colours: Mapping[str, str],
                         viewed_at: datetime | None = None, tiers: TierTable | None = None) -> str:
    """The portrait as one self-contained HTML page (inline CSS and SVG, no script), watermarked
    with the viewer's employee id. `tier_colours` (best tier first) come from the model
    version's tier table; with the table itself (`tiers`), the fit x interest chart draws the
    tiers' regions."""
    viewed_at = viewed_at or datetime.now(UTC)
    score = portrait.current_score
    return portrait_environment().get_template("portrait.html").render(
        p=portrait, viewer=viewer_employee_id, viewed_at=viewed_at,
        score=score, waterfall=waterfall(score) if score else None,
        axes=axes_chart(score, portrait.score_history, tiers) if score else None,
        history=history_chart(portrait.score_history, portrait.mql_threshold, tier_colours),
        months=_months(portrait.timeline),
        tier_colour=tier_colours.get(score.tier, DEFAULT_TIER_COLOUR) if score else None,
        tier_colours=tier_colours, up=UP, down=DOWN,
        tag_kinds=_tag_kinds(portrait.tags),
        opportunities=_first_opportunities(portrait.opportunities),
        open_opportunities=sum(o.stage == "open" for o in portrait.opportunities),
        watermarks=range(160 + 2 * len(portrait.timeline)),
    )


def _first_opportunities(opportunities: list[Opportunity]) -> list[Opportunity]:
    """For the page: the person's own, then the account's open ones, then the rest; newest first in each."""
    ranked = sorted(opportunities, key=lambda o: (not o.this_person, o.stage != "open"))  # stable
    return ranked[:MAX_OPPORTUNITIES_SHOWN]


def _tag_kinds(tags: list[Tag]) -> list[tuple[str, list[Tag]]]:
    order = {"rule": 0, "demand": 1, "mined": 2, "statistical": 3, "attribute": 4}
    kinds: dict[str, list[Tag]] = {}
    for tag in tags:
        kinds.setdefault(tag.kind, []).append(tag)
    names = {"rule": "Signals", "demand": "Demand (UTM)", "mined": "Interests",
             "statistical": "Compared with others", "attribute": "Attributes"}
    return [(names.get(k, k), v) for k, v in sorted(kinds.items(), key=lambda kv: order.get(kv[0], 9))]
