"""Website personalisation: which content a page shows the visitor behind a cookie.

`GET /personalize?cookie_id=...` (role `web`) is called on every page view, so it reads what
the worker already holds: the cookie's person from the batch's identities and the event
log's since (a cookie a form fill bound a moment ago counts at once; a shared computer's
cookie, seen with several people's names, names nobody), the person's tier scored now from
their online features (as /score, without reasons), and their saved segments and tags from
the segment engine's world, kept in memory and read again in the background at most every
`refresh_seconds` (the first call after that starts it). The first rule of
config/personalization.yaml that holds gives the content; rules may use any saved segment and
tag, while an answer shows only those the file lists (segment names are marketers' free text,
and attribute tags say who someone is). An answer never carries a name, email, phone or PID.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import duckdb
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, field_validator

from leadscore.config import StrictModel, load_yaml
from leadscore.live.sources import MAX_TEXT
from leadscore.segments.compile import PEOPLE, where_sql
from leadscore.segments.dsl import parse_segment
from leadscore.segments.engine import SegmentEngine
from leadscore.segments.world import sources

log = logging.getLogger(__name__)

TagKind = Literal["attribute", "statistical", "rule", "mined"]


class Condition(StrictModel):
    """What a rule asks of a visitor; every condition given must hold."""

    tier: list[str] | None = None
    segment: str | None = None
    tag: str | None = None

    @field_validator("tier", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def holds(self, tier: str | None, segments: tuple[str, ...], tags: tuple[str, ...]) -> bool:
        return ((self.tier is None or tier in self.tier)
                and (self.segment is None or self.segment in segments)
                and (self.tag is None or self.tag in tags))


class Rule(StrictModel):
    when: Condition
    content: str = Field(min_length=1)


class PersonalizationRules(StrictModel):
    """config/personalization.yaml, typed."""

    anonymous: str = Field(min_length=1)
    default: str = Field(min_length=1)
    show_tag_kinds: list[TagKind] = ["mined"]  # the tags an answer shows (rules may use any)
    show_segments: list[str] = []  # the saved segments an answer shows, by name (rules may use any)
    refresh_seconds: float = Field(60, gt=0)
    rules: list[Rule] = []

    @classmethod
    def load(cls, path: Path) -> PersonalizationRules:
        return cls.model_validate(load_yaml(path))

    def choose(self, tier: str | None, segments: tuple[str, ...],
               tags: tuple[str, ...]) -> tuple[str, int | None]:
        """The content of the first rule that holds and its number (from 1), or the default's."""
        for number, rule in enumerate(self.rules, start=1):
            if rule.when.holds(tier, segments, tags):
                return rule.content, number
        return self.default, None

    def unknown_tiers(self, tiers: list[str]) -> str | None:
        """What to say of rules naming tiers not among `tiers` (a typo would never match), if any."""
        unknown = sorted({t for rule in self.rules for t in rule.when.tier or [] if t not in tiers})
        return (f"config/personalization.yaml names unknown tier(s) {unknown}: those rules never "
                f"match; the tiers are {tiers}") if unknown else None


class Personalization(BaseModel):
    """What a page may show a visitor: never who they are."""

    known: bool = Field(description="whether the cookie names a person (a form fill bound it)")
    content: str = Field(description="the content to show, from config/personalization.yaml")
    rule: int | None = Field(description="the number of the rule that chose it (from 1); "
                                         "none: the anonymous or the default content")
    tier: str | None = Field(description="the visitor's tier now; none when unknown or not scored")
    segments: list[str] = Field(description="saved segments the visitor is a member of, of those "
                                            "personalization.yaml shows")
    tags: list[str] = Field(description="the visitor's tags of the kinds personalization.yaml shows "
                                        "(interest topics by default)")


@dataclass(frozen=True)
class Audience:
    """Saved-segment memberships and tags of every person, as of one reading."""

    segments: dict[str, tuple[str, ...]]
    tags: dict[str, tuple[str, ...]]  # every tag, of every kind
    shown_tags: dict[str, tuple[str, ...]]  # those of the kinds an answer shows
    read_at: float  # time.monotonic()

    @classmethod
    def read(cls, engine: SegmentEngine, shown_kinds: Sequence[str]) -> Audience:
        world = engine.world()
        now = engine.now(world)
        members: dict[str, list[str]] = {}
        for summary in engine.store.list():
            try:
                saved = engine.store.get(summary["id"])
            except KeyError:  # deleted since the listing
                continue
            try:
                predicate, params = where_sql(parse_segment(saved["segment"]), world.vocabulary, now)
            except ValueError as error:  # saved against an older vocabulary: left out, said
                log.warning("personalisation: saved segment %r left out: %s", saved["name"], error)
                continue
            with world.con.cursor() as cursor:
                rows = cursor.execute(f"SELECT p.pid FROM {PEOPLE} WHERE {predicate}", params).fetchall()
                for (pid,) in rows:
                    members.setdefault(pid, []).append(saved["name"])
        path = sources(engine.settings)["tags"]
        return cls({pid: tuple(names) for pid, names in members.items()}, _tags(path),
                   _tags(path, shown_kinds), time.monotonic())

    @classmethod
    def empty(cls, read_at: float) -> Audience:
        return cls({}, {}, {}, read_at)


def _tags(path: Path, kinds: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """pid -> its tags (of these kinds), from the tags the feature build wrote."""
    if not path.exists():
        return {}
    with duckdb.connect() as con:
        rows = con.execute("SELECT pid, list(DISTINCT tag ORDER BY tag) FROM read_parquet($path) "
                           "WHERE pid IS NOT NULL AND ($all OR kind IN (SELECT unnest($kinds::VARCHAR[]))) "
                           "GROUP BY pid", {"path": str(path), "all": kinds is None,
                                            "kinds": list(kinds or [])}).fetchall()
    return {pid: tuple(tags) for pid, tags in rows}


class Personalizer:
    """Answers /personalize from a cookie: person, tier now, segments, tags and content."""

    def __init__(self, rules: PersonalizationRules, engine: SegmentEngine,
                 person_of_cookie: Callable[[str], str | None], tier_now: Callable[[str], str | None]):
        self.rules = rules
        self.engine = engine
        self.person_of_cookie = person_of_cookie
        self.tier_now = tier_now
        self._audience = Audience.empty(float("-inf"))
        self._reading = threading.Lock()

    def start(self) -> Personalizer:
        """Read the audience once before the first call (a few saved segments' queries)."""
        self._read_audience()
        return self

    def answer(self, cookie_id: str) -> Personalization:
        """What to show; a failure to read the visitor (a store down) is logged and answered
        with the anonymous or default content, never an error on a page view."""
        try:
            pid = self.person_of_cookie(cookie_id.strip())
        except Exception:  # noqa: BLE001 - the page still shows something
            log.exception("personalisation: could not resolve a cookie; answered as anonymous")
            pid = None
        if pid is None:
            return Personalization(known=False, content=self.rules.anonymous, rule=None, tier=None,
                                   segments=[], tags=[])
        try:
            tier = self.tier_now(pid)
        except Exception:  # noqa: BLE001
            log.exception("personalisation: could not score a visitor; answered without a tier")
            tier = None
        audience = self._current_audience()
        segments, tags = audience.segments.get(pid, ()), audience.tags.get(pid, ())
        content, rule = self.rules.choose(tier, segments, tags)
        shown = set(self.rules.show_segments)
        return Personalization(known=True, content=content, rule=rule, tier=tier,
                               segments=[name for name in segments if name in shown],
                               tags=list(audience.shown_tags.get(pid, ())))

    def _current_audience(self) -> Audience:
        """The audience in memory; an old one is read again in the background (never on a call)."""
        audience = self._audience
        if time.monotonic() - audience.read_at > self.rules.refresh_seconds and not self._reading.locked():
            threading.Thread(target=self._read_audience, name="personalize-audience", daemon=True).start()
        return audience

    def _read_audience(self) -> None:
        if not self._reading.acquire(blocking=False):
            return  # another thread is reading it
        try:
            self._audience = Audience.read(self.engine, self.rules.show_tag_kinds)
        except Exception:  # noqa: BLE001 - a failed reading keeps the last one, tried again later
            log.exception("personalisation: could not read saved segments and tags; keeping the last "
                          "for %s s", self.rules.refresh_seconds)
            self._audience = dataclasses.replace(self._audience, read_at=time.monotonic())
        finally:
            self._reading.release()


def build_router(personalizer: Callable[[], Personalizer], guard: Callable) -> APIRouter:
    """GET /personalize for the website (`guard`: the dependency that checks the caller's role)."""
    router = APIRouter(tags=["website"])

    # A plain function, run in the thread pool: a cookie's lookup may first load a new batch's
    # identities (about a second), which must not hold up the worker's other requests.
    @router.get("/personalize", response_model=Personalization, dependencies=[Depends(guard)])
    def personalize(cookie_id: Annotated[str, Query(min_length=1, max_length=MAX_TEXT,
                                                    description="the visitor's cookie id")]
                    ) -> Personalization:
        """The content to show the visitor behind this cookie, with their tier, saved segments and
        tags when a form fill named them; the anonymous content otherwise. No personal data."""
        return personalizer().answer(cookie_id)

    return router
