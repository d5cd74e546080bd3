"""The BentoML service: scores for the CRM, portraits for sales, segments for marketing.

Start it with `bentoml serve` from the project root (bentofile.yaml names this class)
or `leadscore serve`. One `@bentoml.service` class; its HTTP routes are a FastAPI app
mounted with `@bentoml.asgi_app`, which gives the statuses clients rely on (422 naming
the bad field, 413 for an oversized batch, 401/403) and an OpenAPI page at /api/docs.

At start it loads the MLflow `champion` of `lead-propensity`, and its `challenger` when there is
one (each swapped without a restart, see serving/champion.py), opens the Feast store, the portrait reader,
the segment engine and the webhook outbox; requests then only read online features and
compute. A worker answers nothing, `/readyz` included, until all of that is loaded, so
`/readyz` = 200 means the first request is served at once. The challenger scores every
score, batch, ingest and portrait in shadow, off the request path (serving/shadow.py): logged
(score log, trigger `shadow`, its own model version), never returned, never routed or
pushed. Settings come from $LEADSCORE_CONFIG (default config/leadscore.yaml) and
$LEADSCORE_DATA_DIR; keys and roles from config/access.yaml.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal, NamedTuple
from urllib.parse import quote

import bentoml
from bentoml import get_current_service
from fastapi import Depends, Form, HTTPException, Path, Query, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from leadscore.access.audit import AuditLog
from leadscore.access.auth import COOKIE, AccessList, AuthError, Caller, key_from_headers, sha256_hex
from leadscore.access.sessions import SessionStore
from leadscore.config import load_settings
from leadscore.serving import SERVICE_NAME, pages
from leadscore.serving.feature_row import row_problems
from leadscore.serving.limits import BodyLimit
from leadscore.serving.metrics import RouteMetrics, exposition
from leadscore.serving.openapi import service_openapi
from leadscore.serving.opportunities import marked, not_in_opportunity
from leadscore.serving.portrait.errors import PortraitUnavailable, UnknownPerson
from leadscore.serving.portrait.render import render_portrait_html
from leadscore.serving.portrait.schemas import Portrait
from leadscore.serving.schemas import (
    AccountScoreResponse,
    BatchRequest,
    BatchResponse,
    ItemError,
    ScoreRequest,
    ScoreResponse,
)
from leadscore.serving.shadow import ShadowRows, ShadowScoring

if TYPE_CHECKING:
    from leadscore.features.store import Written
    from leadscore.serving.scorer import Scorer

log = logging.getLogger(__name__)
DIGEST_LOOKBACK_DAYS = 30  # a lead's tier and score before the day: its last within this
MAX_PID = 64  # characters of a PID in a URL; ours have 11, a longer one is a 422
PORTRAIT_ROUTE = "/portrait/{pid}"
# `?reasons=feature`: one reason per feature, for data scientists; by default one per
# behaviour (serving/reasons.py).
ReasonDetail = Annotated[Literal["behaviour", "feature"], Query(
    description="`behaviour` (default): one reason per behaviour or trait (reason family), its "
                "features' contributions summed; `feature`: one reason per feature.")]
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # hosts whose session cookie may go without Secure
# FastAPIOffline: the docs page's Swagger UI files come from the fastapi-offline package, not a CDN
app = FastAPIOffline(title="leadscore", version="1", docs_url="/api/docs", redoc_url=None,
                     openapi_url="/api/openapi.json", static_url="/api/docs/static",
                     description="Lead scores with reasons for the CRM, explained portraits for sales, "
                                 "segments for marketing. Send your key as `X-API-Key`.")
app.add_middleware(BodyLimit, max_bytes=lambda: app.state.max_body_bytes)  # set by LeadScoring
app.add_middleware(RouteMetrics)  # outermost: a 413 is counted too


_MOUNTED: list = []  # the included routers of the service built last, as entries of app.router.routes


def _mount_routers(routers: list) -> None:
    """Include a service's routers in the shared app, in place of the previous service's. The
    routers close over their service's own parts (segment engine, ingest, outcomes); a process
    serves one service, but one that builds another (the tests do) must reach the new one's
    routes, not the old ones', which would match first."""
    for route in _MOUNTED:
        app.router.routes.remove(route)
    _MOUNTED.clear()
    for router in routers:
        before = len(app.router.routes)
        app.include_router(router)
        _MOUNTED.extend(app.router.routes[before:])
    app.openapi_schema = None  # the docs follow the routes


async def _current_service() -> LeadScoring:
    """The service, looked up in the event loop. BentoML hands the route methods `self` through
    a plain-function dependency, which FastAPI runs in its thread pool; the dependencies below
    (coroutines for the same reason) use this one. Not a dependency override: while any is
    registered, FastAPI rebuilds every dependency of every request from its signature: a
    sixth of a /score's time in the app."""
    return get_current_service()


async def caller(request: Request, service: Annotated[LeadScoring, Depends(_current_service)]) -> Caller:
    """The caller of a request, from its API key or its browser session; 401 without a valid one.
    Kept on the request for the audit of a 422, which FastAPI answers before the route runs."""
    try:
        request.state.caller = await _caller_of(request, service)
        return request.state.caller
    except AuthError as error:
        raise HTTPException(error.status, error.message,
                            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'}) from None


async def _caller_of(request: Request, service: LeadScoring) -> Caller:
    """By the API key in the headers; without one, by the session of the cookie /login set
    (looked up in a thread: SQLite stays off the event loop)."""
    key = key_from_headers(request.headers)
    token = request.cookies.get(COOKIE)
    if key or not token:
        return service.access.caller(key)
    return service.access.caller_of_session(await run_in_threadpool(service.sessions.key_digest, token))


def allowed(permission: str):
    """A dependency: the caller, if their role may use `permission` endpoints (else 403)."""

    async def check(who: Annotated[Caller, Depends(caller)]) -> Caller:
        try:
            who.require(permission)
        except AuthError as error:
            raise HTTPException(error.status, error.message) from None
        return who

    check.permission = permission  # type: ignore[attr-defined]  # read by the OpenAPI (403)
    return check


async def _metrics_reader(request: Request,
                          service: Annotated[LeadScoring, Depends(_current_service)]) -> None:
    """/metrics is for keys whose role may use `metrics`, unless serving.metrics_open: the counts
    are by route, yet they tell how the service is used."""
    if service.settings.serving.metrics_open:
        return
    who = await caller(request, service)
    try:
        who.require("metrics")
    except AuthError as error:
        raise HTTPException(error.status, error.message) from None


def _openapi() -> dict:
    """The OpenAPI document (serving/openapi.py), with the segments' typed body."""
    from leadscore.segments.api import document_segment_body

    return service_openapi(app, {caller, _metrics_reader}, _permission_checked, [document_segment_body])


def _permission_checked(call: object) -> str | None:
    """The permission a dependency checks (`allowed(...)`, /metrics'), if any."""
    return "metrics" if call is _metrics_reader else getattr(call, "permission", None)


app.openapi = _openapi  # type: ignore[method-assign]


async def _batch_within_limit(request: Request,
                              service: Annotated[LeadScoring, Depends(_current_service)]) -> None:
    """413 for more items than serving.max_batch, counted before FastAPI validates each item
    (100,000 items took 16 s to validate, then got the 413). FastAPI parses the body before it
    solves the dependencies and validates it after them; a body it could not parse is its 422."""
    try:
        body = await request.json()
    except ValueError:
        return
    items = body.get("items") if isinstance(body, dict) else None
    limit = service.settings.serving.max_batch
    if isinstance(items, list) and len(items) > limit:
        raise HTTPException(413, f"{len(items)} items is more than the maximum of {limit} "
                                 "per call (serving.max_batch): split the batch")


class Served(NamedTuple):
    """Scores served at one instant by one route (the score log's trigger), and the rows for
    the challenger to score in shadow."""

    scores: list[dict]
    trigger: str
    at: datetime
    shadow: ShadowRows | None


class ModelInfo(BaseModel):
    registered_model: str = Field(description="The MLflow registered model served.")
    version: str = Field(description="The champion version being served.")
    model_kind: str = Field(description="rule_baseline, logistic_regression or lightgbm.")
    fast_path: bool = Field(description="True when scored on the matrix fast path (LightGBM).")
    loaded_at: float = Field(description="When this version was loaded (Unix time).")
    last_reload_error: str | None = Field(description="Why the last new champion failed to load, if it did.")
    challenger_version: str | None = Field(description="The challenger scoring in shadow (logged, never "
                                                       "returned), if there is one.")


def _freeze_loaded() -> None:
    """Keep what a worker has loaded to serve (the batch's identities, the middle layer's copy,
    the models: millions of objects, living until the next batch or champion) out of the
    collector's full passes, each of which scanned it all: 0.4 s of the interpreter, in the
    middle of a feature update. Called as the worker starts and when a batch's identities
    are loaded again. What a reload replaces is freed by reference counts only (none of these
    objects was found in a cycle); a new champion's objects are not frozen."""
    gc.collect()
    gc.freeze()


# BentoML's own /metrics is off: it needs no key and labels raw paths, a series per PID read
# (serving/metrics.py serves the service's instead)
@bentoml.service(name=SERVICE_NAME, traffic={"timeout": 60}, metrics={"enabled": False})
@bentoml.asgi_app(app)
class LeadScoring:
    """Lead scores with reasons, from the champion model and online features."""

    def __init__(self) -> None:
        # `bentoml serve` imports this module once in its supervisor, only to read the
        # service's configuration, and again in every worker: what only a working service
        # needs (Feast, MLflow, the model's libraries, DuckDB) is imported here, so the
        # supervisor's import is quick and the workers start sooner.
        from leadscore.clock import open_clock
        from leadscore.features.store import OnlineFeatures, open_store
        from leadscore.live.group_commit import GroupCommit
        from leadscore.live.ingest import Ingestor
        from leadscore.live.log import EVENT_LOG, EventLog
        from leadscore.live.online import OnlineUpdater
        from leadscore.live.score_log import ScoreLog
        from leadscore.monitoring.inputs import ReferenceBuilds
        from leadscore.scoring.registry import CHALLENGER
        from leadscore.segments.api import build_router
        from leadscore.segments.engine import SegmentEngine
        from leadscore.serving.account.api import build_router as build_account_router
        from leadscore.serving.account.reader import AccountReader
        from leadscore.serving.account_scorer import AccountScorer
        from leadscore.serving.champion import ChampionWatcher
        from leadscore.serving.ingest import build_router as build_ingest_router
        from leadscore.serving.marketing_page import build_router as build_marketing_router
        from leadscore.serving.opportunities import OpenOpportunities
        from leadscore.serving.outcomes import build_router as build_outcomes_router
        from leadscore.serving.personalize import PersonalizationRules, Personalizer
        from leadscore.serving.personalize import build_router as build_personalize_router
        from leadscore.serving.portrait.reader import PortraitReader
        from leadscore.serving.webhook import MqlPusher

        # BentoML keeps the root logger at WARNING; our own INFO lines (a new champion, a
        # delivered MQL) belong in the service's log.
        logging.getLogger("leadscore").setLevel(logging.INFO)
        self.settings = settings = load_settings()
        sys.setswitchinterval(settings.serving.switch_interval_ms / 1000)  # this worker's threads
        app.state.max_body_bytes = settings.serving.max_body_bytes
        self.access = AccessList.load(settings.config_file(settings.serving.access_file))
        self.features = OnlineFeatures(open_store(settings))
        self.pusher = MqlPusher(settings.serving.webhook, settings.serving_dir)
        self.pusher.start()
        self.champion = ChampionWatcher(settings).start()
        self.challenger = ChampionWatcher(settings, CHALLENGER).start()
        self.portraits = PortraitReader(settings)
        self.account_pages = AccountReader(self.portraits)
        # who is in an open opportunity now: outside the models' population (serving/opportunities.py)
        self.opportunities = OpenOpportunities(
            self.portraits.middle, lambda: self.portraits.live, self.portraits.clock.now,
            settings.serving.opportunities_refresh_s, settings.middle_db).start()
        self.accounts = AccountScorer(settings, self.features, lambda: self.scorer,
                                      self.account_pages.people_of, self.opportunities.of_company)
        self.audit = AuditLog(settings.serving_dir / "audit.jsonl")
        self.sessions = SessionStore(settings.serving_dir, settings.serving.session_hours * 3600)
        self.segments = SegmentEngine(settings)
        self.clock = open_clock(settings)
        self.drift_references = ReferenceBuilds()  # /monitor's, built behind the page
        self.ingestor = Ingestor(settings, reloaded=_freeze_loaded)
        self.online = OnlineUpdater(settings, self.features.store)
        self.online.middle(self.ingestor.log)  # the worker's copy of the middle layer, before an ingest
        self.score_log = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s)
        self.shadows = ShadowScoring(self.score_log, settings.serving.shadow_flush_s,
                                     settings.serving.shadow_max_rows)
        self.ingests = GroupCommit(self._ingest_group, lambda call: len(call[1]),
                                   settings.live.group_records, name="ingest",
                                   crowd_wait_s=settings.live.crowd_wait_s)
        # behind the answers: every update serves all the wakes that queued while it ran
        self.updates = GroupCommit(self._update_features, lambda _: 0, 1, name="feature-update")
        self._stopping = threading.Event()
        self._digest_day: date | None = None
        self._digest_lock = threading.Lock()
        self._digests: list[threading.Thread] = []  # each day's, built behind the ingests
        self.recorder = GroupCommit(self._record_served, lambda served: len(served.scores),
                                    settings.live.group_records, name="score-recorder",
                                    linger_s=settings.serving.record_linger_s)
        # the CRM's outcomes: one connection of the worker's, one call at a time (sqlite3
        # connections are not for concurrent threads; SQLite serialises the writers anyway)
        self.outcome_log = EventLog(settings.live_dir / EVENT_LOG, settings.live.busy_timeout_s)
        self._outcome_lock = threading.Lock()
        rules = PersonalizationRules.load(settings.config_file(settings.serving.personalization_file))
        if (unknown := rules.unknown_tiers(self.scorer.spec.tiers.best_first)) is not None:
            log.warning(unknown)  # a website's content file does not stop the scoring service
        self.personalizer = Personalizer(rules, self.segments, self.ingestor.person_of_cookie,
                                         self.tier_now).start()
        _mount_routers([
            build_personalize_router(lambda: self.personalizer, allowed("personalize")),
            build_router(self.segments, allowed("segments"), self.audit),
            build_marketing_router(settings, allowed("dashboard")),
            build_ingest_router(self.ingest_records, allowed("ingest"), settings.live.max_records),
            build_outcomes_router(self.store_outcomes, self.unknown_pids, allowed("outcomes"),
                                  settings.outcomes, self.clock.now, settings.live.max_ahead_hours),
            build_account_router(self.account_pages, self.account_score_or_none, caller, self.audit,
                                 _prefers_html)])
        self.updates.post(None)  # what a worker that died after its answers left due
        self._due_watch = threading.Thread(target=self._watch_due, name="due-watch", daemon=True)
        self._due_watch.start()
        _freeze_loaded()

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._stopping.set()
        self.ingests.close()
        self._due_watch.join()
        self.updates.close()
        self.recorder.close()
        self.shadows.close()
        self.outcome_log.close()
        self.champion.stop()
        self.challenger.stop()
        self.accounts.stop()
        self.opportunities.stop()
        for digest in self._digests:
            digest.join()
        self.pusher.close()
        gc.unfreeze()  # (a service built in a longer-lived process gives its objects back)

    @property
    def scorer(self) -> Scorer:
        return self.champion.current

    # ---- scores for the CRM -------------------------------------------------------------

    def _score_items(self, items: list[ScoreRequest], batch: bool = False, trigger: str = "score",
                     detail: str = "behaviour", written: Written | None = None
                     ) -> tuple[list[tuple[int, dict]], list[ItemError]]:
        """(position, score record) of each item that could be scored, in request order, and
        the errors; the scores recorded (`_record_scores`) before they are returned.
        `written`: rows just written online, as a read would give them (not read again)."""
        results, errors, shadow = self._scores(items, batch, detail, written)
        self._record_scores(results, trigger, shadow)
        return results, errors

    def _scores(self, items: list[ScoreRequest], batch: bool = False, detail: str = "behaviour",
                written: Written | None = None
                ) -> tuple[list[tuple[int, dict]], list[ItemError], ShadowRows | None]:
        """As `_score_items`, recording nothing, plus the rows for the challenger to score in
        shadow (None without a challenger). PIDs take one online read for all, everything one
        matrix."""
        scorer, shadow = self.scorer, self._shadow_scorer()
        names = scorer.feature_names if shadow is None else list(dict.fromkeys(
            scorer.feature_names + shadow.feature_names))
        by_pid = [(i, item.pid) for i, item in enumerate(items) if item.pid is not None]
        found, errors = self._read_online(by_pid, names, written) if by_pid else ({}, [])
        for i, item in enumerate(items):
            if item.features is not None:
                where = ["body", "items", i] if batch else ["body"]
                found[i] = (_check_feature_row(item.features, scorer, where), None)
        order = sorted(found)
        pids, times = [items[i].pid for i in order], [found[i][1] for i in order]
        columns = {name: [found[i][0].get(name) for i in order] for name in names}
        results = scorer.score_records(pids, columns, times, detail) if order else []
        results = [marked(record, self.opportunities.of_person(record["pid"])) for record in results]
        rows = ShadowRows(shadow, pids, columns, times) if shadow is not None and order else None
        return list(zip(order, results, strict=True)), errors, rows

    def _read_online(self, by_pid: list[tuple[int, str]], names: list[str], written: Written | None
                     ) -> tuple[dict[int, tuple[dict, str | None]], list[ItemError]]:
        """`by_pid`: (index, PID) of the items scored from their online rows. Returns index -> (the
        row, when it was computed) of those known online, and a 404 for each of the others."""
        online = self.features.read_rows([pid for _, pid in by_pid], written)
        found: dict[int, tuple[dict, str | None]] = {}
        errors = []
        for position, (i, pid) in enumerate(by_pid):
            updated_at = online.updated_at[position]  # None for a PID not known online
            if online.known[position] and updated_at is not None:
                found[i] = ({name: online.columns[name][position] for name in names}, updated_at.isoformat())
            else:
                errors.append(ItemError(index=i, pid=pid, status=404, detail=_unknown_pid(pid)))
        return found, errors

    def score_account(self, request: ScoreRequest, detail: str = "behaviour") -> dict:
        """The account score of a company (`cid`) or a group (`eid`): 404 for an id the middle
        layer does not know or without online features, 503 without an account model."""
        from leadscore.serving.account.reader import UnknownAccount
        from leadscore.serving.account_scorer import NoAccountModel

        try:
            if request.cid is not None:
                self.account_pages.owner(request.cid)  # UnknownAccount
                record = self.accounts.score_companies([request.cid], detail).get(request.cid)
            elif request.eid is not None:
                record = self.accounts.score_group(request.eid, self.account_pages.companies_of(request.eid),
                                                   detail)
            else:
                raise HTTPException(422, "an account score needs `cid` or `eid`")
        except UnknownAccount as error:
            raise HTTPException(404, str(error)) from None
        except NoAccountModel as error:
            raise HTTPException(503, str(error)) from None
        except PortraitUnavailable as error:
            raise HTTPException(503, f"accounts are unavailable for a moment: {error}") from None
        if record is None:
            kind, value = ("cid", request.cid) if request.cid is not None else ("eid", request.eid)
            raise HTTPException(404, f"{kind} {value!r} has no account features online (run `leadscore "
                                     "features materialize`)")
        return record

    def account_score_or_none(self, cid: str) -> AccountScoreResponse | None:
        """A company's account score for a page, or None (no account model, no online features)."""
        from leadscore.serving.account_scorer import NoAccountModel

        try:
            record = self.accounts.score_companies([cid]).get(cid)
        except NoAccountModel:
            return None
        return None if record is None else AccountScoreResponse.model_validate(record)

    def tier_now(self, pid: str) -> str | None:
        """The person's tier from their online features now (None: none online), unexplained and
        unlogged: what a web page may adapt to, not a score served to sales."""
        scorer = self.scorer  # one model for the read and the score (a new champion may land between)
        online = self.features.read_rows([pid])
        if not online.known[0]:
            return None
        columns = {name: [online.columns[name][0]] for name in scorer.feature_names}
        return scorer.shadow_records([pid], columns)[0]["tier"]

    def _record_scores(self, results: list[tuple[int, dict]], trigger: str,
                       shadow: ShadowRows | None) -> None:
        """`_record_served` of one call's scores, now."""
        self._record_served([self._served(results, trigger, shadow)])

    def record_after_the_answer(self, results: list[tuple[int, dict]], trigger: str,
                                shadow: ShadowRows | None) -> None:
        """`_record_served` on the recorder's thread, with the calls that queue beside it (one
        transaction for all under load, live/group_commit.py): the answer does not wait for
        the log, and a lock held on the outbox or the score log never holds up the event loop.
        A crash can lose the records of the answers of its last milliseconds."""
        self.recorder.post(self._served(results, trigger, shadow))

    def _served(self, results: list[tuple[int, dict]], trigger: str, shadow: ShadowRows | None) -> Served:
        return Served([result for _, result in results], trigger, self.clock.now(), shadow)

    def wait_for_records(self) -> None:
        """Return once everything served so far is recorded, and scored in shadow."""
        self.recorder.submit(Served([], "score", self.clock.now(), None))
        self.shadows.flush()

    def _record_served(self, calls: Sequence[Served]) -> list[None]:
        """The MQL crossings among the scores served to the webhook's outbox (only scores from
        online features, with a pid, count) and every score to the score log: SQLite both,
        whose locks may be held by another process for up to their busy timeouts. The rows go
        to the challenger, scored in shadow a little later (serving/shadow.py)."""
        scores = [score for served in calls for score in served.scores]
        try:
            self.pusher.observe(not_in_opportunity(scores))
        except Exception:  # noqa: BLE001 - a crossing missed now is found at the next scoring
            log.exception("could not queue MQL crossings for the CRM webhook")
        self.score_log.append_each(scores, [served.at for served in calls for _ in served.scores],
                                   [served.trigger for served in calls for _ in served.scores])
        for served in calls:
            if served.shadow is not None:
                self.shadows.add(served.shadow, served.at)
        return [None] * len(calls)

    def _shadow_scorer(self) -> Scorer | None:
        """The challenger, if there is one other than the champion."""
        challenger = self.challenger.scorer
        return None if challenger is None or challenger.version == self.scorer.version else challenger

    # ---- records from the source systems ----------------------------------------------

    def ingest_records(self, source: str, records: list) -> dict:
        """Ingest one call's records, with the calls that wait beside it (live/group_commit.py).
        The people's features and scores follow behind the answer; at a quiet time (the call
        was alone, no other waited, no feature update was running or waiting) the answer
        waits for theirs, so that it comes with the scores fresh; under load it does not wait
        for the updates that the records queue behind."""
        answer, quiet = self.ingests.submit((source, records))
        if quiet:
            try:
                self.updates.submit(None, timeout_s=self.settings.live.quiet_wait_s)
            except TimeoutError:  # a busy moment: the update goes on behind the answer
                log.info("ingest answered before its people's feature update (over live.quiet_wait_s, %s s)",
                         self.settings.live.quiet_wait_s)
            except Exception:  # noqa: BLE001 - stored already: the people stay due for the next update
                log.warning("ingest answered before its people's feature update", exc_info=True)
        return answer

    def _ingest_group(self, calls: Sequence[tuple[str, list]]) -> list[tuple[dict, bool]]:
        """Append the calls' records to the event log (live/ingest.py), their people marked
        due for a feature update, and wake this worker's feature update (`_update_features`)
        unless the time is quiet (the caller asks for it then, and waits); each call answered
        with its records' fates and people, and whether the time was quiet.
        If the append fails, nothing was stored: each call is tried alone (NothingDone)."""
        from leadscore.live.group_commit import NothingDone
        from leadscore.live.sources import ID_COLUMN
        from leadscore.serving.ingest import describe

        now = self.clock.now()
        try:
            done = self.ingestor.ingest_calls(list(calls), now)
        except Exception as error:
            raise NothingDone from error
        quiet = len(calls) == 1 and self.ingests.idle_behind and self.updates.idle
        if not quiet:  # (re-sent records wake it too: a failed update is tried again)
            self.updates.post(None)
        self._push_digest(now)
        return [(describe(call, [str(getattr(r, ID_COLUMN[source])) for r in records], now), quiet)
                for call, (source, records) in zip(done, calls, strict=True)]

    def _update_features(self, wakes: Sequence[None]) -> list[None]:
        """Every person due for a feature update (live/online.py `update_due`), any worker's,
        `live.update_people` at a time: features computed and written at the clock's now,
        then each re-scored (logged; a crossing of the MQL threshold pushed at once). The
        wakes that queued meanwhile are all served by it.

        While this worker ingests, its update shares one interpreter with the ingest: before
        each batch it waits `live.update_defer_s` (if anyone is still due) and leaves the batch
        to an update another worker is running (`StoreBusy`: that one loops until nothing is
        due), so that a worker with nothing to ingest (`_watch_due`) does the updates on its own
        core; after `live.busy_timeout_s` of that it waits for the lock as an idle worker does
        (a worker stuck while holding it is then reported)."""
        from leadscore.live.online import StoreBusy

        live = self.settings.live
        updated, left_since = True, None  # (since when the batches were left to another)
        try:
            while updated and not self._stopping.is_set():  # until nothing is due
                busy = not self.ingests.idle
                if busy:
                    if not self.ingestor.log.due(1):
                        break
                    self._stopping.wait(live.update_defer_s)
                patient = not busy or (left_since is not None
                                       and time.monotonic() - left_since > live.busy_timeout_s)
                try:
                    updated = bool(self.online.update_due(self.ingestor.log, self.clock.now,
                                                          live.update_people, self._score_updated,
                                                          wait=patient))
                    left_since = None
                except StoreBusy:  # another update runs: look again in a moment
                    left_since = left_since or time.monotonic()
                    self._stopping.wait(live.update_poll_s)
        except Exception:
            self._stopping.wait(live.update_retry_s)  # a failing store, not at once again
            raise
        return [None] * len(wakes)

    def _watch_due(self) -> None:
        """While this worker has nothing to ingest, take the people other workers' ingests
        left due: every `live.update_poll_s`, a look at the queue. Workers share one listening
        socket, and a client's connections often all land on one of them: that one's process
        then spends its interpreter ingesting, and the feature updates go faster on another.
        The same look marks due the people whose record dated ahead of the clock the clock has
        now reached (live/log.py `due_later`)."""
        while not self._stopping.wait(self.settings.live.update_poll_s):
            try:
                if not (self.ingests.idle and self.updates.idle):
                    continue
                self.ingestor.log.release_due(self.clock.now())
                if self.ingestor.log.due(1):
                    self.updates.post(None)
            except Exception:  # noqa: BLE001 - a busy log or a stop: look again later
                log.warning("looking for people due failed", exc_info=True)

    def _score_updated(self, pids: list[str], written: Written | None) -> None:
        """Re-score people whose features were just updated (`written`: their rows as the
        update wrote them, as a read would give them: not read again): logged, crossings pushed."""
        self._score_items([ScoreRequest(pid=pid) for pid in pids], batch=True, trigger="ingest",
                          written=written)

    # ---- outcomes from the CRM --------------------------------------------------------

    def store_outcomes(self, outcomes: list) -> list[bool]:
        """Append the CRM's outcomes to the event log, received at the clock's now (True: new)."""
        from leadscore.live.outcomes import append_outcomes

        with self._outcome_lock:
            stored = append_outcomes(self.outcome_log, outcomes, self.clock.now())
        if any(new and outcome.kind != "disposition" for new, outcome in zip(stored, outcomes, strict=True)):
            self.opportunities.refresh_or_keep()  # an opportunity opened or closed: said at once
        return stored

    def unknown_pids(self, pids: list[str]) -> set[str]:
        """Those of `pids` that are no person known to the middle layer or the event log."""
        try:
            return set(pids) - self.portraits.known(pids)
        except PortraitUnavailable as error:
            raise HTTPException(503, f"people cannot be checked for a moment: {error}") from None

    def _push_digest(self, now: datetime) -> None:
        """Once a clock day (per worker; the outbox keeps one per owner and day): yesterday's
        digest of the leads that became active, to each sales owner (serving/webhook/digest.py),
        built on a thread of its own: the ingest that noticed the new day answers without it
        (reading a day of the score log took up to a second of a busy worker)."""
        today = now.date()
        settings = self.settings.serving.webhook.digest
        if not settings.enabled or not self.pusher.enabled:
            return
        with self._digest_lock:
            if self._digest_day == today:
                return
            self._digest_day = today
            day = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
            thread = threading.Thread(target=self._queue_digest, args=(day,), name="daily-digest")
            self._digests = [*(digest for digest in self._digests if digest.is_alive()), thread]
            thread.start()

    def _queue_digest(self, start: datetime) -> None:
        """Queue the digest of the clock day from `start` (`_push_digest`)."""
        from leadscore.serving.webhook.digest import active_leads, digest_messages

        try:
            logged = self.score_log.read(since=start - timedelta(days=DIGEST_LOOKBACK_DAYS), shadow=False)
            day = logged[(logged["at"] >= start) & (logged["at"] < start + timedelta(days=1))]
            before = logged[logged["at"] < start].groupby("pid").tail(1)
            leads = active_leads(day, before, self.settings.serving.webhook.digest)
            owners = self.portraits.owners(list(leads["pid"])) if len(leads) else {}
            if self._stopping.is_set():  # the outbox is closing: the next start sends it
                return
            sent = self.pusher.enqueue(digest_messages(leads, owners, start.date()))
        except Exception:  # noqa: BLE001 - a digest missed today is not a failed ingest
            log.exception("could not build the daily digest of %s", start.date())
            return
        log.info("daily digest of %s: %d owner message(s) queued", start.date(), sent)

    @app.post("/score_batch", tags=["scores"], response_model=BatchResponse,
              responses={413: {"description": "More items than serving.max_batch"}})
    def score_batch(self, request: BatchRequest, who: Annotated[Caller, Depends(allowed("score"))],
                    within: Annotated[None, Depends(_batch_within_limit)],
                    reasons: ReasonDetail = "behaviour") -> JSONResponse:
        """Many PIDs or feature rows in one call (at most serving.max_batch, 1000 by default);
        unknown PIDs are listed under `errors`, the rest are scored, each result with its position."""
        results, errors = self._score_items(request.items, batch=True, trigger="score_batch",
                                            detail=reasons)
        # The records are the scorer's own values in BatchResponse's shape: sent as they are,
        # without validating a thousand models again.
        return JSONResponse({"results": [{"index": i, **result} for i, result in results],
                             "errors": [error.model_dump() for error in errors]})

    @app.get("/model", tags=["scores"])
    async def model(self, who: Annotated[Caller, Depends(caller)]) -> ModelInfo:
        """The champion being served now, and the challenger scoring in shadow (both change
        without a restart)."""
        scorer = self.scorer
        return ModelInfo(registered_model=self.settings.training.registered_model,
                         version=scorer.version, model_kind=scorer.kind,
                         fast_path=scorer.fast_path,
                         loaded_at=self.champion.loaded_at, last_reload_error=self.champion.last_error,
                         challenger_version=getattr(self._shadow_scorer(), "version", None))

    # ---- portraits for sales ------------------------------------------------------------

    @app.get(PORTRAIT_ROUTE, tags=["portraits"], response_model=Portrait,
             responses={200: {"content": {"text/html": {}}},
                        403: {"description": "A role that may not read portraits, or may not ask pii=full"},
                        404: {"description": "No such person, or one of another rep's accounts"}},
             openapi_extra={"x-permission": "portrait"})  # checked in the route: a 403 is audited
    def portrait(self, pid: Annotated[str, Path(max_length=MAX_PID, description="The person (PID).")],
                 request: Request, who: Annotated[Caller, Depends(caller)],
                 pii: Annotated[str, Query(pattern="^(masked|full)$",
                                           description="`full` shows email and phone unmasked, "
                                                       "for roles allowed to (audited)")] = "masked",
                 format: Annotated[str | None, Query(pattern="^(json|html)$",
                                                     description="json or html (default: by the "
                                                                 "Accept header)")] = None):
        """A person's profile, company and group, timeline, score history, current score with
        reasons, and engaged colleagues. Sales see their own accounts only, and the people of
        those only; another rep's PID is answered as an unknown one (404). Every answer to a
        known caller, refusals included, is audited."""
        def refuse(status: int, message: str) -> HTTPException:
            self.audit.record(who, "portrait", pid, status, [])
            return HTTPException(status, message)

        try:
            who.require("portrait")
        except AuthError as error:
            raise refuse(error.status, error.message) from None
        if pii == "full" and not who.reveal_pii:
            raise refuse(403, f"role {who.role!r} may not see personal data in full: ask without pii=full")
        try:
            if not who.may_see_account_of(self.portraits.owner(pid)):
                # the unknown pid's answer, word for word: a rep must not learn which PIDs exist
                self.audit.record(who, "portrait", pid, 404, [], {"refused": "an account the caller "
                                                                             "does not own"})
                raise HTTPException(404, str(UnknownPerson(pid)))
            scored, _ = self._score_items([ScoreRequest(pid=pid)], trigger="portrait")
            current = ScoreResponse.model_validate(scored[0][1]) if scored else None
            result = self.portraits.portrait(pid, current, reveal_pii=pii == "full",
                                             visible_to=who.account_scope)
            if result.company is not None:
                result.account_score = self.account_score_or_none(result.company.cid)
        except UnknownPerson:
            raise refuse(404, str(UnknownPerson(pid))) from None
        except PortraitUnavailable as error:
            raise refuse(503, f"portraits are unavailable for a moment: {error}") from None
        self.audit.record(who, "portrait", pid, 200, result.fields_read())
        if format == "html" or (format is None and _prefers_html(request)):
            tiers = self.scorer.spec.tiers
            return HTMLResponse(render_portrait_html(result, who.employee_id or who.name, tiers.colours,
                                                     tiers=tiers))
        return result

    # ---- monitoring for the admin --------------------------------------------------------

    @app.get("/monitor", tags=["monitoring"], response_class=HTMLResponse)
    def monitor(self, who: Annotated[Caller, Depends(allowed("monitor"))]) -> HTMLResponse:
        """Matured performance of the champion and any shadow model, drift and operations at the
        clock, and the breaches of monitoring.thresholds, as `leadscore monitor` computes them
        (that command posts the alerts and logs to MLflow; the page only shows them, and has a
        missing drift reference built in the background)."""
        from leadscore.monitoring.alerts import AlertState
        from leadscore.monitoring.inputs import read_inputs
        from leadscore.monitoring.report import build_report
        from leadscore.serving.monitor_page import monitor_page

        settings = self.settings
        try:
            inputs = read_inputs(settings, self.clock.now(), self.features.read_rows, self.drift_references)
        except (FileNotFoundError, LookupError, ValueError) as error:  # no build or spec to compare with
            raise HTTPException(503, f"monitoring is unavailable: {error}") from None
        report = build_report(inputs, settings)
        return HTMLResponse(monitor_page(report, AlertState(settings.monitoring_dir).posted(),
                                         settings.monitoring.thresholds,
                                         who.employee_id or who.name))

    # ---- signing in from a browser ------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login_page(self, next: str = "/", error: str = "") -> HTMLResponse:
        return HTMLResponse(pages.login_page(next, failed=bool(error)))

    @app.post("/login", include_in_schema=False)
    def login(self, request: Request, key: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
        """A known key opens a server-side session; the cookie gets its token, never the key."""
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        try:
            self.access.caller(key)
        except AuthError:
            return RedirectResponse(f"/login?error=1&next={quote(target)}", status_code=303)
        response = RedirectResponse(target, status_code=303)
        _set_session_cookie(response, request, self.sessions.open(sha256_hex(key)),
                            max_age=int(self.sessions.ttl_s))
        return response

    @app.get("/logout", include_in_schema=False)
    def logout(self, request: Request) -> RedirectResponse:
        """Revokes the session (a copy of the cookie opens nothing afterwards) and drops the cookie."""
        token = request.cookies.get(COOKIE)
        if token:
            self.sessions.revoke(token)
        response = RedirectResponse("/login", status_code=303)
        _set_session_cookie(response, request, "", max_age=0)  # same attributes, or it would survive
        return response


@app.post("/score", tags=["scores"], response_model=ScoreResponse | AccountScoreResponse,
          responses={404: {"description": "No features online for the PID (or the company or group)"},
                     503: {"description": "A cid or eid, without an account model"}})
async def score(request: ScoreRequest, who: Annotated[Caller, Depends(allowed("score"))],
                service: Annotated[LeadScoring, Depends(_current_service)],
                reasons: ReasonDetail = "behaviour") -> JSONResponse:
    """Probability, score, tier, routing and the reasons, for one PID or one feature row; for a
    `cid` (a company) or an `eid` (a group), the account's (AccountScoreResponse)."""
    if request.account:
        return JSONResponse(await run_in_threadpool(service.score_account, request, reasons))
    # Scored in the event loop: well under a millisecond of work (an online read from a local
    # store in WAL mode, one row through the model) costs less than a hop to the thread pool.
    # Hence a function given the service, not a method: BentoML hands methods `self` through a
    # dependency that FastAPI runs in its thread pool. The score is recorded off the loop, after
    # the answer: the outbox's and score log's locks can be held by another process for seconds.
    results, errors, shadow = service._scores([request], detail=reasons)
    if errors:
        raise HTTPException(errors[0].status, errors[0].detail)
    service.record_after_the_answer(results, "score", shadow)
    return JSONResponse(results[0][1])  # the scorer's own record, in ScoreResponse's shape


@app.get("/metrics", tags=["operations"], response_class=PlainTextResponse,
         dependencies=[Depends(_metrics_reader)])
def metrics() -> PlainTextResponse:
    """Prometheus metrics: requests and their durations by method, route template and status."""
    from prometheus_client import CONTENT_TYPE_LATEST

    return PlainTextResponse(exposition(), media_type=CONTENT_TYPE_LATEST)


def _set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    """The session cookie: HttpOnly, and Secure for every host but loopback on plain http (a
    demo on this machine), whatever the scheme the service sees (TLS ends at a proxy in front
    of it). A page framed by another site (the segment builder in a CRM) only gets a
    partitioned, SameSite=None cookie, which must be Secure; loopback's ports are one site, so
    Lax serves a demo's frames. Written by hand: Starlette's `partitioned` needs Python 3.14."""
    loopback = request.url.scheme == "http" and request.url.hostname in LOOPBACK
    attributes = "SameSite=Lax" if loopback else "Secure; SameSite=None; Partitioned"
    response.headers.append("set-cookie", f"{COOKIE}={token}; Path=/; Max-Age={max_age}; "
                                          f"HttpOnly; {attributes}")


def _unknown_pid(pid: str | None) -> str:
    return (f"unknown pid {pid!r}: no features online for it; check the PID (see the person "
            "table) or run `leadscore features materialize`")


def _check_feature_row(features: dict, scorer: Scorer, where: list) -> dict:
    """The row, if it fits the champion's spec (serving/feature_row.py); else 422 naming each field."""
    problems = row_problems(features, scorer.spec)
    if problems:
        raise HTTPException(422, [{"loc": [*where, "features", *([name] if name else [])], "msg": message,
                                   "type": "value_error"} for name, message in problems])
    return features


def _prefers_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


@app.exception_handler(HTTPException)
async def _http_error(request: Request, error: HTTPException):
    """Browsers asking for a page without a key go to the sign-in page; APIs get JSON."""
    if error.status_code == 401 and _prefers_html(request):
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)
    if _prefers_html(request) and isinstance(error.detail, str):
        return HTMLResponse(pages.error_page(error.status_code, error.detail), status_code=error.status_code)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code,
                        headers=getattr(error, "headers", None))


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, error: RequestValidationError):
    """FastAPI's 422; for a portrait asked by a known caller also audited, like every other
    answer of that route (the pid as the audit log caps it); for an ingest call only the
    errors of the body's own shape (one record or a list: serving/ingest.py)."""
    who = getattr(request.state, "caller", None)
    if who is not None and getattr(request.scope.get("route"), "path", None) == PORTRAIT_ROUTE:
        service = await _current_service()
        service.audit.record(who, "portrait", request.path_params.get("pid"), 422)
    if request.url.path.startswith("/ingest/"):
        from leadscore.serving.ingest import errors_of_the_shape_sent

        error = RequestValidationError(errors_of_the_shape_sent(error.errors(), error.body), body=error.body)
    return await request_validation_exception_handler(request, error)
