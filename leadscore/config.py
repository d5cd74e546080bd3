"""Typed settings, loaded once from YAML by the CLI and passed down.

Importing this module does no I/O; `load_settings` reads the file. Relative
paths in the file are resolved against the project root (the parent of the
folder that holds the settings file), so commands work from any directory.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

DEFAULT_SETTINGS_FILE = Path(__file__).resolve().parent.parent / "config" / "leadscore.yaml"
SETTINGS_ENV_VAR = "LEADSCORE_CONFIG"
DATA_DIR_ENV_VAR = "LEADSCORE_DATA_DIR"
REDIS_ENV_VAR = "LEADSCORE_REDIS"
OFFLINE_STORE_ENV_VAR = "LEADSCORE_OFFLINE_STORE"  # the feature repo's offline store: the engine
Model = TypeVar("Model", bound=BaseModel)
REJECTION_REASONS = ("not_the_decision_maker", "no_budget", "no_need", "bad_timing", "competitor_customer",
                     "wrong_contact_data", "already_in_contact", "student_or_job_seeker")


class StrictModel(BaseModel):
    """A settings section or a part of a config file: an unknown key is a typo, reported
    rather than ignored."""

    model_config = ConfigDict(extra="forbid")


class PathSettings(StrictModel):
    data_dir: Path = Path("data")
    mlflow_dir: Path = Path("mlflow")
    feature_repo: Path = Path("features")
    datasets_dir: Path = Path("../shared/datasets")


DRIFT_TEXT = re.compile(r"^(?P<kind>[a-z_]+)(=(?P<target>[a-z_]+))?(\*(?P<factor>[0-9.]+))?@(?P<at>\S+)$")
DRIFT_AT = re.compile(r"^((start|end)[+-]\d+d|\d{4}-\d{2}-\d{2})$")


class DriftSettings(StrictModel):
    """A change of the synthetic world's rules from a moment on (synth/drift.py)."""

    kind: Literal["industry", "channel", "base_rate"]
    # when: a date ("2026-06-01") or days from the world's start or end ("start+300d",
    # "end-60d", "end+90d": inside the future that `leadscore replay` sends)
    at: str = Field(pattern=DRIFT_AT.pattern)
    industry: str | None = None  # kind industry: the industry a new product line makes convert
    channel: str | None = None   # kind channel: the touch kind that stops working (webinar, ...)
    factor: float | None = Field(None, ge=0)  # the drift's strength; None: the kind's default

    @classmethod
    def parse(cls, text: str) -> DriftSettings:
        """`KIND[=TARGET][*FACTOR]@WHEN` (the CLI's `--drift`): `industry=education@end-120d`,
        `channel=webinar@2026-06-01`, `base_rate*3@start+300d`."""
        match = DRIFT_TEXT.match(text.strip())
        if match is None:
            raise ValueError(f"drift {text!r} is not KIND[=TARGET][*FACTOR]@WHEN "
                             "(e.g. industry=education@end-120d, base_rate@2026-06-01)")
        target = {match["kind"]: match["target"]} if match["target"] else {}  # industry=..., channel=...
        factor = float(match["factor"]) if match["factor"] else None
        return cls(kind=match["kind"], at=match["at"], factor=factor, **target)

    def __str__(self) -> str:
        """The `--drift` form."""
        target = self.industry or self.channel
        return (f"{self.kind}{f'={target}' if target else ''}"
                f"{f'*{self.factor:g}' if self.factor is not None else ''}@{self.at}")


TRACKING_URI = re.compile(r"^[a-z][a-z0-9+]*://\S+$")


class MlflowSettings(StrictModel):
    """Where MLflow keeps runs and the model registry (training, promotion, serving)."""

    # None: the embedded SQLite store under paths.mlflow_dir. Else an MLflow tracking server
    # (`http://host:5000`, e.g. on PostgreSQL; the server keeps the artifacts) or a database
    # MLflow reads directly (`postgresql://...`: artifacts under paths.mlflow_dir)
    tracking_uri: str | None = None

    @field_validator("tracking_uri")
    @classmethod
    def _a_uri(cls, uri: str | None) -> str | None:
        if uri and not TRACKING_URI.match(uri):
            raise ValueError(f"{uri!r} is not a URI: http://host:port for a tracking server, or a "
                             "database URI (postgresql://user@host/db); empty for the embedded store")
        return uri or None

    @property
    def on_server(self) -> bool:
        """A tracking server: it decides where artifacts go (its --artifacts-destination)."""
        return (self.tracking_uri or "").startswith(("http://", "https://"))


class WorldSettings(StrictModel):
    """Size and seed of the synthetic world; `scale` multiplies every count."""

    seed: int = 42
    scale: float = Field(1.0, gt=0)
    groups: int = Field(1500, gt=0)
    companies: int = Field(2000, gt=0)
    people: int = Field(20000, gt=0)
    interactions: int = Field(1_000_000, gt=0)
    months: int = Field(18, ge=6)
    end_date: date = date(2026, 10, 31)
    future_days: int = Field(0, ge=0)  # drawn past end_date: the world's future, for replays
    sales_reps: int = Field(40, gt=0)
    drift: list[DriftSettings] = []  # changes of the rules at a moment; none: the same world as ever

    def scaled(self, count: int) -> int:
        return max(1, round(count * self.scale))


DUCKDB_MEMORY = r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"  # DuckDB's units


class IdentitySettings(StrictModel):
    shared_identifier_max_names: int = Field(1, ge=1)
    fuzzy_merge: bool = True
    # what DuckDB may hold in identity (standardisation, links, components, survivorship, the
    # middle layer's writer); None: `duckdb.memory_limit`. The 10x world's components need ~3GB
    duckdb_memory_limit: str | None = Field(None, pattern=DUCKDB_MEMORY)


class FeatureSettings(StrictModel):
    step_days: int = Field(7, gt=0)
    windows_days: list[int] = [7, 30, 90, 180]
    ttl_days: int = Field(365, gt=0)
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis: str = "localhost:6379"  # Feast's connection_string: host:port[,db=0,password=...]


class RetrainSettings(StrictModel):
    """`leadscore retrain` (training/retrain.py): which labelled snapshots it learns from, how
    much each counts, and where the calibration is fitted."""

    # expanding: every matured snapshot; sliding: only those within window_days of the cutoff
    window: Literal["expanding", "sliding"] = "expanding"
    window_days: int | None = Field(None, gt=0)
    # a snapshot's sample weight halves every half_life_days before the latest one fitted
    # (LightGBM and logistic regression); None: every snapshot counts the same
    half_life_days: float | None = Field(None, gt=0)
    # the most recent matured snapshots: the refit model's calibration and tiers are fitted
    # on them; the chosen model is refit on every labelled snapshot, these included
    calibration_snapshots: int = Field(3, gt=0)
    # the calibration is fitted out of sample: on the predictions over the calibration window
    # of the same learner fit on the snapshots at least this many days before it
    calibration_purge_days: int = Field(14, ge=0)
    # labels known so far: the refit also learns from snapshots observed at least this many
    # days of their horizon, a negative weighing the share observed (training/windows.py);
    # None: matured snapshots only
    partial_labels_min_days: int | None = Field(None, gt=0)
    # where the calibration and tiers are fitted: the latest `matured` snapshots (whole labels),
    # or the latest observed partial_labels_min_days (`known_so_far`, weighted as the refit's
    # rows), so that a moved base rate is followed weeks after it moved, not a horizon after
    calibration_labels: Literal["matured", "known_so_far"] = "matured"

    @model_validator(mode="after")
    def _length_with_sliding(self) -> RetrainSettings:
        if (self.window == "sliding") != (self.window_days is not None):
            raise ValueError("window_days: give a length with `window: sliding`, and only then")
        return self

    @model_validator(mode="after")
    def _known_so_far_with_partial_labels(self) -> RetrainSettings:
        if self.calibration_labels == "known_so_far" and self.partial_labels_min_days is None:
            raise ValueError("calibration_labels: known_so_far needs partial_labels_min_days")
        return self


class BacktestSettings(StrictModel):
    """Rolling-origin evaluation (training/backtest.py): refit before each period on what came
    before it, score the period, pool the predictions; beside a model fitted once."""

    model: Literal["lightgbm", "logistic_regression", "rule_baseline"] = "lightgbm"
    period_days: int = Field(28, gt=0)  # a new origin every this many days ...
    period_rows: int | None = Field(None, gt=0)  # ... or every this many rows (time-ordered)
    window: Literal["expanding", "sliding"] = "expanding"
    window_days: int | None = Field(None, gt=0)  # sliding: train on this many days before the origin
    window_rows: int | None = Field(None, gt=0)  # sliding by rows: this many rows before the origin
    initial_share: float = Field(0.4, gt=0, lt=1)  # the first part, only trained on (train-once fits it)
    validation_share: float = Field(0.2, gt=0, lt=0.5)  # latest part of each fit: early stopping, calibration

    @model_validator(mode="after")
    def _sliding_has_a_length(self) -> BacktestSettings:
        if self.window == "sliding" and not (self.window_days or self.window_rows):
            raise ValueError("a sliding window needs its length: window_days or window_rows")
        return self


class AccountSettings(StrictModel):
    """The account model (training/accounts.py): companies' propensity, trained with the lead model."""

    enabled: bool = True
    registered_model: str = "account-propensity"
    tiers_file: str = "account_tiers.yaml"
    lightgbm: dict = Field(default_factory=dict)  # overrides of training/models.py's defaults
    stacked_candidate: bool = True  # also train the candidate that adds its people's scores to its trees


class TrainingSettings(StrictModel):
    snapshot_every_days: int = Field(14, gt=0)
    first_snapshot_after_days: int = Field(90, ge=0)
    horizon_days: int = Field(90, gt=0)
    target: Literal["opportunity", "won"] = "opportunity"
    exclude_customers: bool = False
    validation_snapshots: int = Field(3, gt=0)
    test_snapshots: int = Field(3, gt=0)
    registered_model: str = "lead-propensity"
    primary_metric: str = "pr_auc"
    preferred_model: str = "lightgbm"
    selection_margin: float = Field(0.005, ge=0)
    ece_tolerance: float = Field(0.005, ge=0)
    leakage_max_auc: float = Field(0.95, gt=0.5, le=1)
    sales_capacity_per_month: int = Field(200, gt=0)
    lightgbm: dict = Field(default_factory=dict)
    rules_file: str = "scoring_rules.yaml"
    tiers_file: str = "tiers.yaml"
    retrain: RetrainSettings = RetrainSettings()
    backtest: BacktestSettings = BacktestSettings()
    account: AccountSettings = AccountSettings()


class ScoreSettings(StrictModel):
    reference_probability: float = Field(0.05, gt=0, lt=1)
    reference_score: float = 50
    points_to_double_odds: float = Field(8, gt=0)


class DigestSettings(StrictModel):
    """The daily digest per sales owner (serving/webhook/digest.py)."""

    enabled: bool = True
    tiers: list[str] = ["high-value", "high-potential"]  # a lead newly in one of these ...
    min_score_rise: float = Field(15, gt=0)               # ... or whose score rose this much in a day


class WebhookSettings(StrictModel):
    """Where sales-ready leads are pushed, and how hard to try."""

    url: str | None = None          # the CRM's endpoint; None: nothing is pushed
    mql_threshold: float = Field(60, ge=0, le=100)
    timeout_s: float = Field(5, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_s: float = Field(0.5, gt=0)      # first retry delay; doubles each attempt
    backoff_max_s: float = Field(60, gt=0)
    digest: DigestSettings = DigestSettings()


class ServingSettings(StrictModel):
    host: str = "127.0.0.1"
    port: int = 3000
    max_reasons: int = 5
    workers: int = Field(2, ge=1)            # BentoML worker processes (one per core)
    max_batch: int = Field(1000, gt=0)       # rows per /score_batch request (413 above)
    max_body_bytes: int = Field(4 * 2**20, gt=0)  # a request body; more is a 413 before it is read
    metrics_open: bool = False  # /metrics without a key (a scraper on a private network); else `metrics` keys
    access_file: str = "access.yaml"         # API keys and roles, in config/
    personalization_file: str = "personalization.yaml"  # GET /personalize's rules, in config/
    session_hours: float = Field(12, gt=0)   # a browser's sign-in at /login lasts this long (or to /logout)
    model_check_s: float = Field(10, gt=0)   # how often the service looks for a new champion
    history_every_days: int = Field(28, gt=0)  # batch scoring: one history point every ...
    history_points: int = Field(7, gt=0)       # ... this many points back from the latest
    # a challenger scores the rows served in shadow off the request path, in batches: every
    # this many seconds, or sooner at this many rows (serving/shadow.py)
    shadow_flush_s: float = Field(1.0, gt=0)
    shadow_max_rows: int = Field(5000, gt=0)
    # what /score served is recorded after the answer, in one transaction per this many seconds
    record_linger_s: float = Field(0.05, ge=0)
    # how often a worker reads again who is in an open opportunity (serving/opportunities.py);
    # the CRM's outcomes a worker stores are read at once
    opportunities_refresh_s: float = Field(5, gt=0)
    # how long a worker's thread may hold the interpreter while another waits for it (Python's
    # switch interval, 5 ms by default): a thread back from SQLite or DuckDB waits that long
    switch_interval_ms: float = Field(0.5, gt=0)
    webhook: WebhookSettings = WebhookSettings()


class ClockSettings(StrictModel):
    """One "now" for every stage (leadscore/clock.py)."""

    mode: Literal["world", "wall"] = "world"


class LiveSettings(StrictModel):
    """The live path: records ingested one by one between batch runs (leadscore/live/)."""

    max_records: int = Field(1000, gt=0)   # records per POST /ingest call; more is a 413
    busy_timeout_s: float = Field(30, gt=0)  # how long a writer waits for the event log's lock
    # a record dated later than the clock's now plus this is quarantined (a wrong clock, a typo)
    max_ahead_hours: float = Field(24, ge=0)
    # calls that wait while a worker processes one group of ingests form the next group, one
    # transaction (live/group_commit.py); a group stops growing once it holds this many records
    group_records: int = Field(1000, gt=0)
    # after a group of several calls, the next waits up to this long for as many callers to
    # come back (live/group_commit.py): else the first of them is processed alone
    crowd_wait_s: float = Field(0.02, ge=0)
    # a feature update behind the answers takes at most this many people due at a time
    update_people: int = Field(2000, gt=0)
    # a worker with nothing to ingest looks for people due this often; one busy ingesting
    # waits this long before updating, for such a worker to take the update first
    update_poll_s: float = Field(0.02, gt=0)
    update_defer_s: float = Field(0.05, ge=0)
    # at a quiet time an ingest's answer waits this long at most for its people's update
    quiet_wait_s: float = Field(1.0, ge=0)
    # after an update that failed for everyone, a worker's next one waits this long
    update_retry_s: float = Field(1.0, ge=0)


class OutcomeSettings(StrictModel):
    """What the CRM sends back (POST /outcomes, live/outcomes.py)."""

    # why a sales rep may reject a pushed MQL: a reason outside this list is a 422 naming them,
    # so that monitoring can count rejections by reason
    rejection_reasons: list[str] = Field(default_factory=lambda: list(REJECTION_REASONS), min_length=1)
    max_outcomes: int = Field(1000, gt=0)  # outcomes per POST /outcomes call; more is a 413


class MonitoringThresholds(StrictModel):
    """When a monitored figure is a breach (monitoring/alerts.py); None: never."""

    min_roc_auc: float | None = Field(0.65, ge=0, le=1)  # a matured cohort's ranking power
    min_pr_auc: float | None = Field(None, ge=0, le=1)
    max_ece: float | None = Field(0.05, ge=0, le=1)      # a matured cohort's calibration error
    max_feature_psi: float | None = Field(0.25, ge=0)    # a feature's population stability index
    max_score_psi: float | None = Field(0.25, ge=0)
    max_unknown_share: float | None = Field(0.05, ge=0, le=1)  # categories the model never saw
    max_missing_increase: float | None = Field(0.20, ge=0, le=1)  # missing rate, now minus reference
    max_quarantine_rate: float | None = Field(0.05, ge=0, le=1)   # ingested records quarantined
    max_rejection_rate: float | None = Field(0.50, ge=0, le=1)    # MQLs rejected by sales, of those judged
    max_webhook_failures: int | None = Field(0, ge=0)             # CRM messages given up on
    # early outcomes (monitoring/early.py): observed / expected opportunities of scores younger
    # than the horizon; a breach when its whole interval (`early_confidence`) lies beyond
    max_early_oe_ratio: float | None = Field(1.3, gt=0)
    min_early_oe_ratio: float | None = Field(0.7, ge=0)
    # arrivals (monitoring/arrivals.py): the CUSUM of the daily opportunity counts, in
    # log-likelihood units (the decision interval h): higher alarms later and less often
    max_arrival_cusum: float | None = Field(5.0, gt=0)


class ArrivalSettings(StrictModel):
    """The watch on how many opportunities arrive a day (monitoring/arrivals.py): the clock's
    last `window_days` against the rate of the `reference_days` before them."""

    window_days: int = Field(28, gt=0)
    reference_days: int = Field(90, gt=0)
    min_reference_days: int = Field(28, gt=0)  # live history before the window the test needs
    ratio_up: float = Field(1.5, gt=1)    # the CUSUM is tuned to this many times the reference rate
    ratio_down: float = Field(0.5, gt=0, lt=1)  # ... and to this share of it

    @model_validator(mode="after")
    def _reference_holds_its_minimum(self) -> ArrivalSettings:
        if self.min_reference_days > self.reference_days:
            raise ValueError("min_reference_days cannot exceed reference_days")
        return self


class MonitoringSettings(StrictModel):
    """`leadscore monitor` and the /monitor page (monitoring/)."""

    window_days: int = Field(30, gt=0)      # drift and operations: the last this many days of the clock
    reference_days: int = Field(180, gt=0)  # drift's reference: up to the champion's test window's end
    min_drift_days: int = Field(7, gt=0)    # drift waits for this many days of served traffic
    min_matured: int = Field(100, gt=0)     # matured scores a model version needs before it is judged
    min_converted: int = Field(10, gt=0)    # ... of this many converted people, for promotion to rest on them
    promotion_confidence: float = Field(0.9, ge=0, le=1)  # ... and the challenger ahead in this share
    promotion_resamples: int = Field(200, ge=0)           # ... of people resamples (0: no resampling)
    bins: int = Field(10, ge=2)             # reliability bins (equal-count) and score deciles
    psi_bins: int = Field(10, ge=2)         # PSI: quantile bins of the reference
    experiment: str = "lead-propensity-monitoring"  # MLflow experiment: one run per `leadscore monitor`
    alert_webhook: str | None = None        # breaches are POSTed here once each; None: logged and shown only
    alert_timeout_s: float = Field(5, gt=0)
    alert_keep_days: float = Field(14, ge=0)  # a posted breach is posted again only after this long clear
    thresholds: MonitoringThresholds = MonitoringThresholds()
    # early outcomes (monitoring/early.py): the scores of the clock's last this many days, judged
    # before their horizon on the opportunities arrived so far against those expected
    early_windows_days: list[int] = Field(default_factory=lambda: [14, 30], min_length=1)
    early_confidence: float = Field(0.99, gt=0, lt=1)  # the exact Poisson interval of O/E
    early_min_delays: int = Field(50, gt=0)  # matured conversions before F is theirs (else k / horizon)
    arrivals: ArrivalSettings = ArrivalSettings()

    @field_validator("early_windows_days")
    @classmethod
    def _windows_are_days(cls, days: list[int]) -> list[int]:
        if any(day <= 0 for day in days):
            raise ValueError(f"each early window is a positive number of days, not {days}")
        return days

    @model_validator(mode="after")
    def _drift_waits_within_the_window(self) -> MonitoringSettings:
        if self.min_drift_days > self.window_days:
            raise ValueError(f"min_drift_days ({self.min_drift_days}) cannot exceed window_days "
                             f"({self.window_days}): drift would never be judged")
        return self


class DuckDBSettings(StrictModel):
    """What DuckDB may hold in memory where the heavy stages run on it (README, "Memory")."""

    # DuckDB's own default is 80% of the machine's memory, taken before it spills to disk
    memory_limit: str = Field("1GB", pattern=DUCKDB_MEMORY)


class FrequencySettings(StrictModel):
    """Contact frequency (marketing/frequency.py): email open and click rates by sends a month,
    for people who showed interest in a product and people who did not."""

    # "showed interest": one of these events in the interest_days before the email (the events
    # behind the interest tags of config/tags.yaml: content_reader, hand_raiser, webinar_fan,
    # event_goer)
    interest_event_types: list[str] = Field(default_factory=lambda: [
        "whitepaper_download", "contact_sales", "webinar_register", "webinar_attend", "event_register",
        "event_attend"], min_length=1)
    interest_days: int = Field(90, gt=0)
    # "sends a month": the emails of the last recent_days up to an email (or, for an export's cap,
    # up to now)
    recent_days: int = Field(30, gt=0)
    response_days: int = Field(7, ge=0)  # emails this recent are not judged: opens may be to come
    min_sends: int = Field(200, gt=0)  # a number of sends a month is on the curve with this many emails
    # a turning point needs the fitted open rate at the most sends to be this much (relative)
    # below the rate at the point; else the segment has no cap
    min_relative_drop: float = Field(0.1, gt=0, lt=1)


class MarketingSettings(StrictModel):
    """Marketing's analyses (marketing/)."""

    frequency: FrequencySettings = FrequencySettings()


class SparkSettings(StrictModel):
    """The Spark session of the heavy stages with `engine: spark` (leadscore/spark.py)."""

    master: str = "local[2]"       # local[N] in tests, a cluster's URL in production
    driver_memory: str = Field("1g", pattern=r"^\d+[kmgt]?$")  # the driver's JVM heap (Spark's units)
    shuffle_partitions: int = Field(4, gt=0)  # spark.sql.shuffle.partitions
    options: dict[str, str | int | float] = Field(default_factory=dict)  # any other spark.* setting


class Settings(StrictModel):
    """Everything a command needs; `root` anchors the relative paths."""

    root: Path
    source: Path | None = None  # the settings file this came from
    paths: PathSettings = PathSettings()
    mlflow: MlflowSettings = MlflowSettings()
    world: WorldSettings = WorldSettings()
    identity: IdentitySettings = IdentitySettings()
    features: FeatureSettings = FeatureSettings()
    training: TrainingSettings = TrainingSettings()
    score: ScoreSettings = ScoreSettings()
    serving: ServingSettings = ServingSettings()
    clock: ClockSettings = ClockSettings()
    live: LiveSettings = LiveSettings()
    outcomes: OutcomeSettings = OutcomeSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    duckdb: DuckDBSettings = DuckDBSettings()
    marketing: MarketingSettings = MarketingSettings()
    engine: Literal["duckdb", "spark"] = "duckdb"  # where the heavy stages run
    spark: SparkSettings = SparkSettings()

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def data_dir(self) -> Path:
        return self._resolve(self.paths.data_dir)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def truth_dir(self) -> Path:
        return self.data_dir / "truth"

    @property
    def future_dir(self) -> Path:
        """The world's next `world.future_days` days, one <source>.parquet each (`synth.future`)."""
        return self.data_dir / "future"

    @property
    def middle_db(self) -> Path:
        return self.data_dir / "middle.duckdb"

    @property
    def feature_data_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def scores_dir(self) -> Path:
        """Batch scores: score_history.parquet (every scoring, the latest per pid last)."""
        return self.data_dir / "scores"

    @property
    def serving_dir(self) -> Path:
        """Service state: the audit log and the webhook outbox."""
        return self.data_dir / "serving"

    @property
    def monitoring_dir(self) -> Path:
        """Monitoring's state: which breaches were posted to the alert webhook."""
        return self.data_dir / "monitoring"

    @property
    def live_dir(self) -> Path:
        """The live path's state: the clock, the event log, the score log."""
        return self.data_dir / "live"

    @property
    def duckdb_config(self) -> dict[str, str]:
        """DuckDB settings of the heavy stages' connections: the memory limit, and where what
        does not fit spills (beside the data, cleared by DuckDB when the connection closes)."""
        return {"memory_limit": self.duckdb.memory_limit,
                "temp_directory": str(self.data_dir / "duckdb.tmp")}

    @property
    def identity_duckdb_config(self) -> dict[str, str]:
        """`duckdb_config` with identity's own limit (`identity.duckdb_memory_limit`) if it has one."""
        return self.duckdb_config | {"memory_limit": self.identity.duckdb_memory_limit
                                     or self.duckdb.memory_limit}

    @property
    def feature_repo(self) -> Path:
        return self._resolve(self.paths.feature_repo)

    @property
    def datasets_dir(self) -> Path:
        return self._resolve(self.paths.datasets_dir)

    @property
    def mlflow_dir(self) -> Path:
        return self._resolve(self.paths.mlflow_dir)

    @property
    def tracking_uri(self) -> str:
        """`mlflow.tracking_uri`, or the embedded SQLite store under `paths.mlflow_dir`."""
        return self.mlflow.tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        """Where new experiments keep their artifacts: under `paths.mlflow_dir`, or None on a
        tracking server (its own artifact root, reached through it)."""
        return None if self.mlflow.on_server else (self.mlflow_dir / "artifacts").as_uri()

    def config_file(self, name: str) -> Path:
        return self.config_dir / name

    @property
    def source_file(self) -> Path:
        """The settings file these settings came from (a world copies or points at it)."""
        if self.source is None:
            raise ValueError("these settings were not read from a file (load_settings): no settings file")
        return self.source

    def with_data_dir(self, data_dir: Path, mlflow_dir: Path | None = None) -> Settings:
        """A copy whose build output lives elsewhere (tests, side-by-side worlds)."""
        paths = self.paths.model_copy(
            update={"data_dir": data_dir, "mlflow_dir": mlflow_dir or data_dir / "mlflow"}
        )
        return self.model_copy(update={"paths": paths})

    def with_mlflow(self, tracking_uri: str | None, mlflow_dir: Path | None = None) -> Settings:
        """A copy on another MLflow store: the server (or database) `tracking_uri`, or with None
        the embedded store under `mlflow_dir` (default: this one's)."""
        paths = self.paths.model_copy(update={"mlflow_dir": mlflow_dir or self.paths.mlflow_dir})
        return self.model_copy(update={"paths": paths, "mlflow": MlflowSettings(tracking_uri=tracking_uri)})


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file (default: $LEADSCORE_CONFIG or config/leadscore.yaml).

    $LEADSCORE_DATA_DIR, when set, overrides `paths.data_dir`.
    """
    path = Path(path or os.environ.get(SETTINGS_ENV_VAR) or DEFAULT_SETTINGS_FILE).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"settings file not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        settings = Settings(root=path.parent.parent, source=path, **raw)
    except ValidationError as error:
        raise ValueError(f"{path}: {validation_problems(error)}") from None
    if os.environ.get(DATA_DIR_ENV_VAR):
        paths = settings.paths.model_copy(update={"data_dir": Path(os.environ[DATA_DIR_ENV_VAR])})
        settings = settings.model_copy(update={"paths": paths})
    return settings


def load_yaml(path: Path) -> dict:
    """Read one YAML config file, naming the file when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    return yaml.safe_load(path.read_text()) or {}


def validation_problems(error: ValidationError) -> str:
    """A pydantic error as one line: `where: what` for each problem (just `what` for a check
    of the whole file)."""
    return "; ".join(_problem(e) for e in error.errors())


def _problem(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    return f"{'.'.join(map(str, error['loc']))}: {message}" if error["loc"] else message


def load_typed(path: Path, model: type[Model]) -> Model:
    """Read one YAML config file into a typed model; errors name the file and each key."""
    try:
        return model.model_validate(load_yaml(path))
    except ValidationError as error:
        raise ValueError(f"{path}: {validation_problems(error)}") from None
