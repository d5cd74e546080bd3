"""The segments' world: the middle layer, tags and latest scores, loaded once into memory.

Counting must answer while a marketer types, so the engine does not open the middle
layer's file or read Parquet per request: it copies what segments need into an in-memory
DuckDB at start (a few seconds for the default world), and the vocabulary with it:

- `person` and `company`: every column (email and phone for masked previews only);
- `interaction`: identified events only (a NULL pid is an anonymous visitor, never a
  member) of the event types in config/event_types.yaml, sorted by type and time so a
  window reads few row groups, with each JSON property extracted into a typed column
  once, instead of parsing JSON in every count;
- `person_tag(pid, tag)` from `person_tags.parquet`;
- `latest_score`: the row with the latest `scored_at` per pid of
  `scores/score_history.parquet`.

Missing tags or scores load as empty tables: conditions on them then fail with a message
naming the command that makes them. `as_of` is the latest event time in the middle layer;
the engine counts windows from the clock (leadscore/clock.py). Interactions ingested
since the batch (the event log, live/log.py) are appended to the loaded `interaction`
table as they arrive (`LiveTail`), with the same typed property columns.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from leadscore.access.masking import PII_FIELDS
from leadscore.conditions import FieldType, field_type, quote
from leadscore.config import Settings, load_typed, load_yaml
from leadscore.duckdb_rows import one_row
from leadscore.scoring.spec import TierTable
from leadscore.segments.vocabulary import SCORE_FIELDS, EventSpec, FieldSpec, Vocabulary

if TYPE_CHECKING:
    from leadscore.live.log import EventLog

log = logging.getLogger(__name__)

MAX_CHOICES = 200  # a text field with at most this many values offers them as choices
PROPERTY_NAME = "[A-Za-z_][A-Za-z0-9_]*"  # other JSON keys are not offered (nor put in SQL text)
_NUMBER_JSON_TYPES = {"UBIGINT", "BIGINT", "DOUBLE"}
JSON_TYPES = {"number": "DOUBLE", "text": "VARCHAR"}
EVENT_COLUMNS = ("pid", "event_type", "event_time")
Properties = dict[str, FieldType]  # property name -> number or text
SCORE_COLUMNS = "pid VARCHAR, tier VARCHAR, score DOUBLE, probability DOUBLE, fit_score DOUBLE, " \
                "interest_score DOUBLE, scored_at TIMESTAMPTZ, fit DOUBLE, interest DOUBLE"


@dataclass(frozen=True)
class World:
    """A loaded world. `stamps`: the sources' modification times when loaded (None for a
    world made in memory, which is never reloaded)."""

    con: duckdb.DuckDBPyConnection
    vocabulary: Vocabulary
    as_of: datetime
    tiers: tuple[str, ...]
    stamps: dict[str, int | None] | None
    extract: str = ""  # the SELECT clause that types an event's JSON properties into columns
    live_seq: tuple[str, int] = ("", 0)  # (event log id, last interaction of it) the middle layer holds


def sources(settings: Settings) -> dict[str, Path]:
    return {"middle": settings.middle_db,
            "tags": settings.feature_data_dir / "person_tags.parquet",
            "scores": settings.scores_dir / "score_history.parquet"}


def source_stamps(settings: Settings) -> dict[str, int | None]:
    """Each source's modification time (ns), None when it does not exist."""
    return {name: path.stat().st_mtime_ns if path.exists() else None
            for name, path in sources(settings).items()}


def _property_types(con: duckdb.DuckDBPyConnection, event_types: list[str]) -> dict[str, Properties]:
    """event type -> {property: number or text}, for properties that are plain names and are
    not NULL on every event of the type."""
    rows = con.execute("""
        SELECT event_type, key, list(DISTINCT json_type(properties, '$.' || key)) AS types
        FROM (SELECT event_type, properties::JSON AS properties, unnest(json_keys(properties::JSON)) AS key
              FROM mid.interaction
              WHERE pid IS NOT NULL AND list_contains($1, event_type) AND json_valid(properties))
        WHERE regexp_full_match(key, $2)
        GROUP BY ALL""", [event_types, PROPERTY_NAME]).fetchall()
    found: dict[str, Properties] = {}
    for event_type, key, types in rows:
        types = set(types) - {"NULL"}
        if types and key not in EVENT_COLUMNS:
            found.setdefault(event_type, {})[key] = "number" if types <= _NUMBER_JSON_TYPES else "text"
    return found


def _column_types(found: dict[str, Properties]) -> Properties:
    """One column per property name: a number only if it is a number for every event type."""
    columns: Properties = {}
    for properties in found.values():
        for key, kind in properties.items():
            columns[key] = "text" if columns.get(key, kind) == "text" else kind
    return dict(sorted(columns.items()))


def _load_middle(con: duckdb.DuckDBPyConnection, middle_db: Path,
                 event_types: list[str]) -> tuple[dict[str, Properties], str, tuple[str, int]]:
    """person, company and the typed interaction table; returns {event type: {property: type}},
    the clause that extracts the properties and the event-log rows the layer holds."""
    con.execute("ATTACH $1 AS mid (READ_ONLY)", [str(middle_db)])
    try:
        con.execute(f"CREATE TABLE person AS {_person_sql(con)}")
        con.execute("CREATE TABLE company AS SELECT * FROM mid.company")
        con.execute("CREATE TABLE clock AS SELECT max(event_time) AS as_of FROM mid.interaction")
        try:  # which event log rows it holds (none for a layer from before the live path)
            held = con.execute("SELECT log, interaction FROM mid.live_watermark").fetchone() or ("", 0)
        except duckdb.Error:
            held = ("", 0)
        found = _property_types(con, event_types)
        columns = _column_types(found)
        structure = json.dumps({key: JSON_TYPES[kind] for key, kind in columns.items()})
        extracted = f", unnest(json_transform(properties, {_literal(structure)}))" if columns else ""
        con.execute(f"""
            CREATE TABLE interaction AS
            SELECT pid, event_type, event_time{extracted}
            FROM mid.interaction WHERE pid IS NOT NULL AND list_contains($1, event_type)
            ORDER BY event_type, event_time""", [event_types])
    finally:
        con.execute("DETACH mid")
    return ({event: {key: columns[key] for key in found.get(event, {})} for event in event_types},
            extracted, (str(held[0]), int(held[1])))


def _person_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The people with the demand tags of their first and latest tagged touch (UTM demand
    tags, identity/demand.py): attributes a segment can name and an export shows; empty for
    a middle layer from before demand tags."""
    tagged = one_row(con, "SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'mid' "
                          "AND table_name = 'person_demand_tag'")[0]
    demand = ("LEFT JOIN mid.person_demand_tag d ON d.pid = p.pid" if tagged else
              "LEFT JOIN (SELECT NULL::VARCHAR AS pid, NULL::VARCHAR AS first_tag, "
              "NULL::VARCHAR AS latest_tag) d ON FALSE")
    return (f"SELECT p.*, d.first_tag AS demand_first, d.latest_tag AS demand_latest "
            f"FROM mid.person p {demand} WHERE p.pid IS NOT NULL")


def _literal(text: str) -> str:
    """A SQL string literal, for the JSON structure of json_transform, which must be a
    constant. It is built from property names that match PROPERTY_NAME, not from a request."""
    return "'" + text.replace("'", "''") + "'"


def _load_tags(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """person_tag(pid, tag); returns {tag: label} (empty when there are no tags yet)."""
    if not path.exists():
        con.execute("CREATE TABLE person_tag (pid VARCHAR, tag VARCHAR)")
        return {}
    con.execute("CREATE TABLE person_tag AS SELECT DISTINCT pid, tag FROM read_parquet($1) "
                "WHERE pid IS NOT NULL ORDER BY tag, pid", [str(path)])
    rows = con.execute("SELECT tag, any_value(label) FROM read_parquet($1) GROUP BY tag ORDER BY tag",
                       [str(path)]).fetchall()
    return {tag: label or tag for tag, label in rows}


def _load_scores(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """latest_score: the latest scoring of each pid; False when nothing was scored yet."""
    if not path.exists():
        con.execute(f"CREATE TABLE latest_score ({SCORE_COLUMNS})")
        return False
    described = con.execute("DESCRIBE SELECT * FROM read_parquet($1)", [str(path)]).fetchall()
    present = {row[0] for row in described}
    columns = ", ".join(name if name in present else f"CAST(NULL AS {kind}) AS {name}"  # an older file
                        for name, kind in (column.split() for column in SCORE_COLUMNS.split(", ")))
    con.execute(f"CREATE TABLE latest_score AS SELECT {columns} FROM read_parquet($1) "
                "QUALIFY row_number() OVER (PARTITION BY pid ORDER BY scored_at DESC) = 1", [str(path)])
    return True


def _choices(con: duckdb.DuckDBPyConnection, table: str, column: str, where: str = "TRUE",
             params: list | None = None) -> tuple:
    """The distinct values of a text column, when there are at most MAX_CHOICES of them."""
    values = con.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {where} AND {column} IS NOT NULL "
                         f"ORDER BY 1 LIMIT {MAX_CHOICES + 1}", params or []).fetchall()
    return tuple(v for (v,) in values) if len(values) <= MAX_CHOICES else ()


def _attributes(con: duckdb.DuckDBPyConnection) -> dict[str, FieldSpec]:
    """`person.<column>` and `company.<column>`, except personal data (email, phone)."""
    specs = {}
    for table, alias in (("person", "p"), ("company", "c")):
        rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = $1 ORDER BY ordinal_position", [table]).fetchall()
        for name, dtype in rows:
            if name in PII_FIELDS:
                continue
            kind = field_type(dtype)
            values = _choices(con, table, quote(name)) if kind == "text" else ()
            specs[f"{table}.{name}"] = FieldSpec(f"{alias}.{quote(name)}", kind, values)
    return specs


def _events(con: duckdb.DuckDBPyConnection, described: dict[str, str],
            properties: dict[str, Properties]) -> dict[str, EventSpec]:
    events = {}
    for event_type, description in described.items():
        specs = {}
        for key, kind in sorted(properties[event_type].items()):
            values = _choices(con, "interaction", quote(key), "event_type = $1", [event_type]) \
                if kind == "text" else ()
            specs[key] = FieldSpec(quote(key), kind, values)
        events[event_type] = EventSpec(str(description), specs)
    return events


def _scores(tiers: tuple[str, ...]) -> dict[str, FieldSpec]:
    return {name: FieldSpec(f"s.{quote(name)}", kind, tiers if name == "tier" else ())
            for name, kind in SCORE_FIELDS.items()}


def load_world(settings: Settings) -> World:
    """Copy the middle layer, tags and latest scores into a new in-memory DuckDB."""
    stamps = source_stamps(settings)
    if stamps["middle"] is None:
        raise FileNotFoundError(f"no middle layer at {settings.middle_db}: run `leadscore identity resolve`")
    described = load_yaml(settings.config_file("event_types.yaml"))["event_types"]
    tiers = tuple(load_typed(settings.config_file(settings.training.tiers_file), TierTable).best_first)
    paths = sources(settings)
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")  # a bar on stderr would garble `bench --json` logs
    properties, extract, live_seq = _load_middle(con, paths["middle"], list(described))
    tags = _load_tags(con, paths["tags"])
    scored = _load_scores(con, paths["scores"])
    vocabulary = Vocabulary(_attributes(con), _events(con, described, properties), tags, _scores(tiers),
                            tagged=bool(tags), scored=scored)
    as_of = con.execute("SELECT as_of FROM clock").fetchall()[0][0] or datetime.now(UTC)  # no events: now
    log.info("segments world loaded: as of %s, tags %s, scores %s", as_of, bool(tags), scored)
    return World(con, vocabulary, as_of.astimezone(UTC), tiers, stamps, extract, live_seq)


class LiveTail:
    """Appends the event log's new interactions to a loaded world's `interaction` table."""

    def __init__(self, log_path: Path, event_types: list[str]) -> None:
        self.log_path = log_path
        self.event_types = event_types
        self._log: EventLog | None = None  # one connection to the event log, opened when it exists
        self._con: duckdb.DuckDBPyConnection | None = None  # the world's tables appended to ...
        self._seen = 0  # ... and the last log row appended to them

    def sync(self, world: World) -> int:
        """Append what arrived since the last call; returns how many interactions. (Called
        under the engine's lock.)"""
        if self._log is None:
            if not self.log_path.is_file():
                return 0
            from leadscore.live.log import EventLog

            self._log = EventLog(self.log_path)
        if self._con is not world.con:  # a newly loaded world holds the log up to its watermark
            self._con = world.con
            self._seen = world.live_seq[1] if world.live_seq[0] == self._log.id else 0
        frame, self._seen = self._log.interactions_after(self._seen)
        frame = frame[frame["pid"].notna() & frame["event_type"].isin(self.event_types)]
        if frame.empty:
            return 0
        with world.con.cursor() as cursor:
            cursor.register("live_interaction", frame)
            cursor.execute(f"INSERT INTO interaction SELECT pid, event_type, event_time{world.extract} "
                           "FROM live_interaction")
        return len(frame)
