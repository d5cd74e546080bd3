"""Person tags: short, explained labels for segments and sales portraits.

The CDP practice of tagging a profile, in four kinds, all declared in
`config/tags.yaml` and computed in one DuckDB query:

- **attribute**: a declared attribute's value becomes a tag (`industry:software`);
- **statistical**: a person's place in the population (`top_engaged_10pct`,
  `rising_engagement`, `dormant`);
- **rule**: conditions on the latest features (`webinar_fan`, `hand_raiser`);
- **mined**: topics mined from the text of recent engagement events
  (`interest:product_a`);
- **demand**: the UTM demand tag of the person's first and latest tagged touch
  (`demand:data_platform`, `demand_first:e-commerce`; identity/demand.py).

Every tag carries a `label` a salesperson reads and an `evidence` string that says
why ("events_90d = 57, top 2% (90th percentile = 31 among 4,210 people with events_90d > 0)").

The query reads `latest_features` (one row per pid), `interaction` and the one-row
`feature_clock(as_of)`. Config values never become SQL text: feature names must be
columns of `latest_features` (then quoted), operators come from a closed list, and
every value, label and keyword is a bound parameter. Conditions compile through the
shared condition compiler (`leadscore/conditions.py`), as segments do.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from leadscore.conditions import Query, all_of, any_of, compare, field_type, quote

log = logging.getLogger(__name__)

KINDS = ("attribute", "statistical", "rule", "mined", "demand")
DEMAND_TOUCHES = ("first", "latest")  # person_demand_tag's columns: <touch>_tag, <touch>_tag_at
# the tag rules' spelling -> the condition compiler's operator
OPERATORS = {">=": ">=", ">": ">", "<=": "<=", "<": "<", "==": "=", "!=": "!=", "in": "in"}
_JSON_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_QUERY = r"^(https?://[^?#]*)[?#].*$"  # utm parameters are tracking, not topic


@dataclass(kw_only=True)
class _Query(Query):
    """The feature columns (name -> DuckDB type) of one query, with its bound parameters."""

    columns: dict[str, str]

    def column(self, name: object, where: str) -> str:
        """The quoted column of a feature, after checking it exists."""
        self.lookup(self.columns, name, "feature", where)
        return quote(str(name))

    def show(self, name: str, expr: str) -> str:
        """SQL text of a feature value for evidence: numbers rounded, `3.0` shown as `3`."""
        if field_type(self.columns[name]) == "number":
            return f"regexp_replace(round({expr}, 2)::VARCHAR, '\\.0+$', '')"
        return f"{expr}::VARCHAR"


@dataclass(frozen=True)
class _Condition:
    feature: str
    column: str  # the quoted column
    needs: str  # the test in words, ">= 2"
    predicate: str  # never NULL: a missing feature value fails the condition

    @property
    def text(self) -> str:
        return f"{self.feature} {self.needs}"

    def evidence(self, query: _Query) -> str:
        """SQL text: "feature = value (needs >= 2)" when the condition holds, else NULL."""
        return (f"CASE WHEN {self.predicate} THEN format('{{}} = {{}} (needs {{}})', "
                f"{query.bind(self.feature)}, {query.show(self.feature, self.column)}, "
                f"{query.bind(self.needs)}) END")


def _condition(cond: dict, query: _Query, where: str) -> _Condition:
    """One `{feature, op, value}` condition on latest_features."""
    column = query.column(cond.get("feature"), where)
    op, value = cond.get("op"), cond.get("value")
    if op not in OPERATORS:
        raise ValueError(f"{where}: unknown operator `{op}`; valid operators: {', '.join(OPERATORS)}")
    if (op == "in") != isinstance(value, list) or value is None or isinstance(value, dict):
        raise ValueError(f"{where}: `{op}` needs {'a list' if op == 'in' else 'one value'}, got {value!r}")
    predicate = compare(column, OPERATORS[op], value if op == "in" else [value], query)
    needs = f"one of {', '.join(map(str, value))}" if op == "in" else f"{op} {value}"
    return _Condition(cond["feature"], column, needs, predicate)


def _label(tag: str, spec: dict) -> str:
    return str(spec.get("label") or tag.replace("_", " "))


def _select(tag: str, kind: str, label: str, evidence: str) -> str:
    """The output columns of every tag query; `tag`, `label`, `evidence` are SQL expressions."""
    return f"SELECT pid, {tag} AS tag, '{kind}' AS kind, {label} AS label, {evidence} AS evidence"


# --- attribute tags ---------------------------------------------------------------------------

def _slug(expr: str) -> str:
    """A value as a tag suffix: lower case, runs of other characters as `_` ("5000+" stays)."""
    return f"trim(regexp_replace(lower({expr}::VARCHAR), '[^a-z0-9+.-]+', '_', 'g'), '_')"


def _attribute_sql(spec: dict, query: _Query) -> str:
    """`prefix`: one tag per non-null value (`industry:software`); `tag`: one tag when the
    value is true (a 0/1 flag such as is_decision_maker)."""
    name = spec.get("feature", "")
    where = f"attribute tag on `{name}`"
    column = query.column(name, where)
    evidence = f"format('{{}} = {{}}', {query.bind(name)}, {query.show(name, column)})"
    if ("prefix" in spec) == ("tag" in spec):
        raise ValueError(f"{where}: give either `prefix` (a tag per value) or `tag` (a flag)")
    if "tag" in spec:
        label = query.bind(spec.get("label", spec["tag"]))
        return (f"{_select(query.bind(spec['tag']), 'attribute', label, evidence)} "
                f"FROM latest_features WHERE coalesce(TRY_CAST({column} AS BOOLEAN), FALSE)")
    tag = f"{query.bind(spec['prefix'] + ':')} || {_slug(column)}"
    template = query.bind(spec.get("label", spec["prefix"] + ": {value}"))
    label = f"replace({template}, '{{value}}', replace({column}::VARCHAR, '_', ' '))"
    return (f"{_select(tag, 'attribute', label, evidence)} "
            f"FROM latest_features WHERE {column} IS NOT NULL")


# --- statistical tags -------------------------------------------------------------------------

def _ordinal(n: float) -> str:
    n = round(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _top_share_evidence(name: str, share: float, people: str, query: _Query) -> str:
    """'events_90d = 57, top 2% (90th percentile = 31 among 4,210 people with events_90d > 0)'."""
    return (f"format('{{}} = {{}}, top {{}}% ({{}} percentile = {{}} among {{:,}} people with {{}})', "
            f"{query.bind(name)}, {query.show(name, 'v')}, ceil(100 * at_or_above / n)::BIGINT, "
            f"{query.bind(_ordinal(100 * (1 - share)))}, regexp_replace(round(q, 2)::VARCHAR, '\\.0+$', ''), "
            f"n, {query.bind(people)})")


def _top_share_sql(tag: str, spec: dict, query: _Query) -> str:
    """The top `share` of the people meeting `among` by `feature`: a person is tagged when the
    people with a value at least theirs are at most that share of them. Ties at the cut-off
    are left out together, so the tag never covers more than the share."""
    where = f"statistical tag `{tag}`"
    name, share = spec.get("feature", ""), float(spec["share"])
    if not 0 < share < 1:
        raise ValueError(f"{where}: share must be between 0 and 1, got {share}")
    column = query.column(name, where)
    among = [_condition(cond, query, where) for cond in spec.get("among", [])]
    eligible = all_of([f"{column} IS NOT NULL", *(c.predicate for c in among)])
    people = " and ".join(c.text for c in among) or f"a value of {name}"
    evidence = _top_share_evidence(name, share, people, query)
    return f"""{_select(query.bind(tag), 'statistical', query.bind(_label(tag, spec)), evidence)}
        FROM (SELECT pid, v, count(*) OVER () - rank() OVER (ORDER BY v) + 1 AS at_or_above,
                     count(*) OVER () AS n, quantile_cont(v, {query.bind(1 - share)}) OVER () AS q
              FROM (SELECT pid, {column} AS v FROM latest_features WHERE {eligible}))
        WHERE at_or_above <= floor({query.bind(share)} * n + 1e-9)"""


def _growth_sql(tag: str, spec: dict, query: _Query) -> str:
    """Rising engagement: the daily rate in the recent window is at least `min_ratio` times
    the rate in the rest of the baseline window, with at least `min_recent` recent events
    (so 1 event after none is not 'rising')."""
    where = f"statistical tag `{tag}`"
    recent, baseline = query.column(spec.get("recent"), where), query.column(spec.get("baseline"), where)
    recent_days, baseline_days = int(spec["recent_days"]), int(spec["baseline_days"])
    if not 0 < recent_days < baseline_days:
        raise ValueError(f"{where}: needs 0 < recent_days < baseline_days")
    before_days = query.bind(baseline_days - recent_days)
    ratio = f"(r / {query.bind(recent_days)}) / (b / {before_days})"
    growth = (f"CASE WHEN b = 0 THEN 'none before: new activity' ELSE "
              f"format('{{}}x the earlier daily rate', round({ratio}, 1)) END")
    values = f"{query.show(spec['recent'], 'r')}, {query.show(spec['baseline'], 'b')}"
    evidence = (f"format('{{}} = {{}} vs {{}} in the {{}} days before: {{}}', {query.bind(spec['recent'])}, "
                f"{values}, {before_days}, {growth})")
    return f"""{_select(query.bind(tag), 'statistical', query.bind(_label(tag, spec)), evidence)}
        FROM (SELECT pid, {recent} AS r, {baseline} - {recent} AS b FROM latest_features)
        WHERE r >= {query.bind(spec.get('min_recent', 1))}
          AND r * {before_days} >= {query.bind(float(spec['min_ratio']))} * b * {query.bind(recent_days)}"""


def _inactive_sql(tag: str, spec: dict, query: _Query) -> str:
    """Dormant: `feature` (days since the last event) above `days`. People with no event at
    all have no value and are not dormant: they never engaged."""
    name = spec.get("feature", "days_since_last_event")
    column = query.column(name, f"statistical tag `{tag}`")
    days = query.bind(spec["days"])
    evidence = (f"format('{{}} = {{}} (dormant after {{}} days)', {query.bind(name)}, "
                f"{query.show(name, column)}, {days})")
    return (f"{_select(query.bind(tag), 'statistical', query.bind(_label(tag, spec)), evidence)} "
            f"FROM latest_features WHERE {column} > {days}")


STATISTICAL_METHODS = {"top_share": _top_share_sql, "growth": _growth_sql, "inactive": _inactive_sql}


def _statistical_sql(tag: str, spec: dict, query: _Query) -> str:
    method = spec.get("method")
    if method not in STATISTICAL_METHODS:
        raise ValueError(f"statistical tag `{tag}`: unknown method `{method}`; "
                         f"valid methods: {', '.join(STATISTICAL_METHODS)}")
    return STATISTICAL_METHODS[method](tag, spec, query)


# --- rule tags --------------------------------------------------------------------------------

def _rule_sql(tag: str, spec: dict, query: _Query) -> str:
    """Every `all` condition and at least one `any` condition hold. The evidence lists the
    conditions that hold, each with the person's value."""
    where = f"rule tag `{tag}`"
    every = [_condition(cond, query, where) for cond in spec.get("all", [])]
    some = [_condition(cond, query, where) for cond in spec.get("any", [])]
    if not every and not some:
        raise ValueError(f"{where}: needs `all` or `any` conditions")
    clauses = [c.predicate for c in every] + ([any_of([c.predicate for c in some])] if some else [])
    evidence = f"concat_ws('; ', {', '.join(c.evidence(query) for c in every + some)})"
    return (f"{_select(query.bind(tag), 'rule', query.bind(_label(tag, spec)), evidence)} "
            f"FROM latest_features WHERE {all_of(clauses)}")


# --- mined tags -------------------------------------------------------------------------------

def _topics(spec: dict) -> list[dict]:
    """The topics as rows for a bound list parameter: name, label, keywords, min_events."""
    topics = []
    for name, topic in spec.get("topics", {}).items():
        keywords = [str(k).lower() for k in topic.get("keywords", []) if str(k).strip()]
        if not keywords:
            raise ValueError(f"mined topic `{name}`: needs at least one keyword")
        topics.append({"topic": str(name), "label": str(topic.get("label", name)), "keywords": keywords,
                       "min_events": int(topic.get("min_events", spec.get("min_events", 1)))})
    return topics


def _json_paths(fields: list) -> list[str]:
    bad = [f for f in fields if not isinstance(f, str) or not _JSON_FIELD.match(f)]
    if bad or not fields:
        raise ValueError(f"mined tags: `fields` must be property names, got {fields!r}")
    return [f"$.{f}" for f in fields]


def _recent_events_sql(spec: dict, query: _Query, window: str) -> str:
    """The person's engagement events in the window before as_of, each with its text: the
    non-empty property `fields` joined by ` | `."""
    values = f"json_extract_string(i.properties, {query.bind(_json_paths(spec['fields']))})"
    parts = (f"list_filter(list_transform({values}, lambda v: regexp_replace(v, '{_URL_QUERY}', '\\1')), "
             "lambda v: v IS NOT NULL AND v <> '')")
    excluded = query.bind([str(kind) for kind in spec.get("exclude_event_types", [])])
    return f"""
        SELECT i.pid, i.event_type, i.event_time, row_number() OVER () AS event_no,
               array_to_string({parts}, ' | ') AS detail
        FROM interaction i, feature_clock c
        WHERE i.pid IS NOT NULL AND json_valid(i.properties) AND NOT list_contains({excluded}, i.event_type)
          AND i.event_time >= c.as_of::TIMESTAMPTZ - to_days({window}::INTEGER)
          AND i.event_time < c.as_of::TIMESTAMPTZ"""


def _mined_evidence(window: str) -> str:
    """'3 events in the last 90 days mentioning "product a"; latest: web_visit "..." on 2026-10-03'."""
    count = "count(DISTINCT event_no)"
    keywords = "'\"' || array_to_string(list_sort(list_distinct(list(keyword))), '\", \"') || '\"'"
    return (f"format('{{}} {{}} in the last {{}} days mentioning {{}}; latest: {{}} \"{{}}\" on {{}}', "
            f"{count}, CASE WHEN {count} = 1 THEN 'event' ELSE 'events' END, {window}, {keywords}, "
            "arg_max(event_type, event_time), arg_max(detail, event_time), "
            "strftime(max(event_time), '%Y-%m-%d'))")


def _mined_sql(spec: dict, query: _Query) -> str:
    """A topic tag when at least `min_events` engagement events in the last `window_days`
    before as_of mention one of its keywords (case-insensitive substring) in the text fields
    of their properties. An event counts once per topic, however many keywords it matches."""
    topics = _topics(spec)
    if not topics:
        return ""
    window = query.bind(int(spec["window_days"]))
    tag = f"{query.bind(spec.get('tag_prefix', 'interest') + ':')} || topic"
    return f"""
        WITH events AS ({_recent_events_sql(spec, query, window)}),
        keywords AS (SELECT t.topic, t.label, t.min_events, unnest(t.keywords) AS keyword
                     FROM (SELECT unnest({query.bind(topics)}) AS t)),
        hits AS (SELECT e.*, k.topic, k.label, k.min_events, k.keyword
                 FROM events e JOIN keywords k ON contains(lower(e.detail), k.keyword))
        {_select(tag, 'mined', 'any_value(label)', _mined_evidence(window))}
        FROM hits GROUP BY pid, topic
        HAVING count(DISTINCT event_no) >= any_value(min_events)"""


# --- demand tags ------------------------------------------------------------------------------

def _demand_sql(spec: dict, query: _Query) -> str:
    """The UTM demand of a person's first and latest tagged touch (the middle layer's
    `person_demand_tag`, identity/demand.py): `{prefix}:{tag}` for each touch declared."""
    unknown = set(spec) - set(DEMAND_TOUCHES)
    if unknown:
        raise ValueError(f"demand tags: unknown touches {sorted(unknown)}; "
                         f"valid: {', '.join(DEMAND_TOUCHES)}")
    parts = []
    for touch, touch_spec in spec.items():
        tag = f"{query.bind(touch_spec['prefix'] + ':')} || {_slug(touch + '_tag')}"
        template = query.bind(touch_spec.get("label", touch_spec["prefix"] + ": {value}"))
        label = f"replace({template}, '{{value}}', {touch}_tag)"
        evidence = (f"format('{touch} touch with a demand tag on {{}}', "
                    f"strftime({touch}_tag_at, '%Y-%m-%d'))")
        parts.append(f"{_select(tag, 'demand', label, evidence)} FROM person_demand_tag "
                     f"WHERE {touch}_tag IS NOT NULL AND {touch}_tag_at < (SELECT as_of FROM feature_clock)")
    return " UNION ALL ".join(parts)


# --- the whole query --------------------------------------------------------------------------

def _declared_tags(rules: dict) -> Iterator[str]:
    yield from (spec["tag"] for spec in rules.get("attribute", []) if "tag" in spec)
    yield from rules.get("statistical", {})
    yield from rules.get("rule", {})
    prefix = rules.get("mined", {}).get("tag_prefix", "interest")
    yield from (f"{prefix}:{topic}" for topic in rules.get("mined", {}).get("topics", {}))
    yield from (f"{spec['prefix']}:*" for spec in rules.get("demand", {}).values())


def _check_unique(rules: dict) -> None:
    seen: set[str] = set()
    for tag in _declared_tags(rules):
        if tag in seen:
            raise ValueError(f"tag `{tag}` is declared twice in the tag rules")
        seen.add(tag)


def _kind_queries(rules: dict, query: _Query) -> list[str]:
    unknown = set(rules) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown tag kinds {sorted(unknown)}; valid kinds: {', '.join(KINDS)}")
    _check_unique(rules)
    parts = [_attribute_sql(spec, query) for spec in rules.get("attribute", [])]
    parts += [_statistical_sql(tag, spec, query) for tag, spec in rules.get("statistical", {}).items()]
    parts += [_rule_sql(tag, spec, query) for tag, spec in rules.get("rule", {}).items()]
    parts.append(_mined_sql(rules["mined"], query) if rules.get("mined") else "")
    parts.append(_demand_sql(rules["demand"], query) if rules.get("demand") else "")
    return [part for part in parts if part]


def tags_sql(rules: dict, columns: dict[str, str]) -> tuple[str, list]:
    """The tag query for the parsed config/tags.yaml and its parameters (`$1`, `$2`, ...).
    `columns` maps the columns of latest_features to their DuckDB types; a feature that is
    not one of them, or an unknown operator, is a ValueError."""
    if "pid" not in columns:
        raise ValueError("latest_features has no `pid` column")
    query = _Query(columns=dict(columns))
    parts = _kind_queries(rules, query)
    union = "\nUNION ALL\n".join(f"SELECT * FROM ({part})" for part in parts) or (
        "SELECT NULL::VARCHAR AS pid, NULL::VARCHAR AS tag, NULL::VARCHAR AS kind, "
        "NULL::VARCHAR AS label, NULL::VARCHAR AS evidence WHERE FALSE")
    sql = f"""
        SELECT t.pid::VARCHAR AS pid, t.tag::VARCHAR AS tag, t.kind::VARCHAR AS kind,
               t.label::VARCHAR AS label, t.evidence::VARCHAR AS evidence,
               (SELECT as_of FROM feature_clock)::TIMESTAMPTZ AS as_of
        FROM ({union}) t
        ORDER BY t.pid, t.kind, t.tag"""
    return sql, query.params


def feature_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The columns of latest_features and their types."""
    rows = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = 'latest_features'").fetchall()
    if not rows:
        raise ValueError("no `latest_features` table or view on the connection")
    return {name: dtype for name, dtype in rows}


def build_tags(con: duckdb.DuckDBPyConnection, rules: dict, out_path: Path) -> int:
    """Write the person tags to `out_path` (Parquet: pid, tag, kind, label, evidence, as_of),
    atomically; return the number of rows."""
    sql, params = tags_sql(rules, feature_columns(con))
    tmp = out_path.with_suffix(".tmp.parquet")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _person_tags AS {sql}", params)
    try:
        target = str(tmp).replace("'", "''")
        con.execute(f"COPY _person_tags TO '{target}' (FORMAT parquet)")
        counts = dict(con.execute("SELECT kind, count(*) FROM _person_tags GROUP BY kind").fetchall())
    finally:
        con.execute("DROP TABLE IF EXISTS _person_tags")
    os.replace(tmp, out_path)
    if not counts:
        log.warning("no person tags: %s is empty", out_path.name)
    log.info("person tags by kind: %s", counts)
    return sum(counts.values())
