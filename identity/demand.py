"""UTM demand tags: a closed list of demands, mapped from campaigns and ad groups.

The marketing team keeps the mapping in config/demand_tags.yaml (glob patterns on
`utm_content`, the ad group, and `utm_campaign`). Only listed tags exist, as in a CRM's
picklist: a rule naming another tag is an error when the file is read, and a UTM value no
rule knows is reported in `demand_tag_unknown` (value, touches, examples), never guessed.

The middle layer gets, from the interactions that carry UTM parameters or name a campaign:

- `campaign_touch(lid, pid, cid, cookie_id, touch_time, touch_rank, event_type, campaign_id,
  utm_campaign, utm_content, demand_tag, unknown_utm)`: every touch of a campaign (a session or
  form by its link, an email click, an event registration), resolved through One ID like every
  interaction; `touch_rank` orders touches of one instant (the visit, its form, a registration,
  an email click);
- `person_demand_tag(pid, first_tag, first_tag_at, latest_tag, latest_tag_at)`: the demand of
  a person's first and latest tagged touch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import load_yaml

log = logging.getLogger(__name__)

EXAMPLES = 3  # example interactions per unknown value in the report


@dataclass(frozen=True)
class DemandTags:
    """The allowed tags and the rules (field, glob pattern, tag or None), in priority order."""

    tags: tuple[str, ...]
    rules: tuple[tuple[str, str, str | None], ...]

    @classmethod
    def from_config(cls, config: dict, where: str = "demand_tags.yaml") -> DemandTags:
        tags = tuple(config.get("tags") or ())
        rules = []
        for key, field in (("ad_groups", "utm_content"), ("campaigns", "utm_campaign")):
            for pattern, tag in (config.get(key) or {}).items():
                if tag is not None and tag not in tags:
                    raise ValueError(f"{where}: {key}.{pattern} maps to {tag!r}, which is not in "
                                     f"`tags` ({', '.join(tags)}); add it there or fix the rule")
                rules.append((field, str(pattern), tag))
        return cls(tags, tuple(rules))

    @classmethod
    def load(cls, path: Path) -> DemandTags:
        """The rules of `path`; none (every UTM value unknown) when the file does not exist."""
        return cls.from_config(load_yaml(path), path.name) if path.is_file() else cls((), ())

    def frame(self) -> pd.DataFrame:
        """The rules as a table for SQL: priority, field, LIKE pattern, tag."""
        return pd.DataFrame({
            "priority": pd.Series(range(len(self.rules)), dtype="int64"),
            "field": pd.Series([r[0] for r in self.rules], dtype="string"),
            "pattern": pd.Series([r[1].lower().replace("%", r"\%").replace("_", r"\_").replace("*", "%")
                                  for r in self.rules], dtype="string"),
            "tag": pd.Series([r[2] for r in self.rules], dtype="string"),
        })


TOUCHES_SQL = """
    WITH raw AS (
        SELECT lid, pid, cid, cookie_id, event_time AS touch_time, event_type,
               nullif(lower(trim(properties->>'utm_campaign')), '') AS utm_campaign,
               nullif(lower(trim(properties->>'utm_content')), '') AS utm_content,
               CASE WHEN event_type = 'email_click' THEN properties->>'campaign_id'
                    WHEN event_type IN ('webinar_register', 'event_register') THEN properties->>'event_id'
               END AS named_campaign
        FROM interaction
        WHERE event_type IN ('web_visit', 'form_submit', 'whitepaper_download', 'contact_sales',
                             'email_click', 'webinar_register', 'event_register')),
    touched AS (
        SELECT * FROM raw WHERE utm_campaign IS NOT NULL OR utm_content IS NOT NULL
                                OR named_campaign IS NOT NULL),
    matches AS (
        SELECT t.lid, r.field, r.priority, r.tag
        FROM touched t JOIN demand_rule r
          ON (r.field = 'utm_content' AND t.utm_content LIKE r.pattern ESCAPE '\\')
          OR (r.field = 'utm_campaign' AND t.utm_campaign LIKE r.pattern ESCAPE '\\')),
    decided AS (
        SELECT lid,
               arg_min(tag, priority) FILTER (WHERE tag IS NOT NULL AND field = 'utm_content') AS by_content,
               arg_min(tag, priority) FILTER (WHERE field = 'utm_campaign') AS by_campaign,
               bool_or(field = 'utm_campaign' OR tag IS NOT NULL) AS known
        FROM matches GROUP BY lid)
    SELECT t.lid, t.pid, t.cid, t.cookie_id, t.touch_time,
           -- at one instant the visit (the link that brought them) comes first, then its form,
           -- a registration, an email click
           CASE t.event_type WHEN 'web_visit' THEN 0 WHEN 'email_click' THEN 3
                WHEN 'webinar_register' THEN 2 WHEN 'event_register' THEN 2 ELSE 1 END AS touch_rank,
           t.event_type,
           coalesce(t.named_campaign, c.campaign_id) AS campaign_id, t.utm_campaign, t.utm_content,
           coalesce(d.by_content, d.by_campaign) AS demand_tag,
           (t.utm_campaign IS NOT NULL OR t.utm_content IS NOT NULL) AND NOT coalesce(d.known, FALSE)
               AS unknown_utm
    FROM touched t
    LEFT JOIN decided d USING (lid)
    LEFT JOIN (SELECT lower(utm_campaign) AS utm_campaign, any_value(campaign_id) AS campaign_id
               FROM campaign WHERE utm_campaign IS NOT NULL GROUP BY 1) c USING (utm_campaign)
    ORDER BY t.touch_time, touch_rank, t.lid"""

PERSON_SQL = """
    SELECT pid,
           arg_min(demand_tag, (touch_time, touch_rank, lid)) AS first_tag, min(touch_time) AS first_tag_at,
           arg_max(demand_tag, (touch_time, touch_rank, lid)) AS latest_tag, max(touch_time) AS latest_tag_at
    FROM campaign_touch WHERE pid IS NOT NULL AND demand_tag IS NOT NULL
    GROUP BY pid ORDER BY pid"""

UNKNOWN_SQL = f"""
    SELECT CASE WHEN utm_campaign IS NOT NULL THEN 'utm_campaign' ELSE 'utm_content' END AS field,
           coalesce(utm_campaign, utm_content) AS value, count(*) AS touches,
           count(DISTINCT pid) AS people, min(touch_time) AS first_seen, max(touch_time) AS last_seen,
           list(lid ORDER BY touch_time, lid)[1:{EXAMPLES}] AS example_lids
    FROM campaign_touch WHERE unknown_utm
    GROUP BY ALL ORDER BY touches DESC, value"""


def build_demand_tables(con: duckdb.DuckDBPyConnection, rules: DemandTags) -> pd.DataFrame:
    """campaign_touch, person_demand_tag and demand_tag_unknown from `interaction` and
    `campaign`; returns the unknown values' report (also logged)."""
    con.register("demand_rule_df", rules.frame())
    con.execute("CREATE OR REPLACE TEMP TABLE demand_rule AS SELECT * FROM demand_rule_df")
    con.execute(f"CREATE OR REPLACE TABLE campaign_touch AS {TOUCHES_SQL}")
    con.execute(f"CREATE OR REPLACE TABLE person_demand_tag AS {PERSON_SQL}")
    con.execute(f"CREATE OR REPLACE TABLE demand_tag_unknown AS {UNKNOWN_SQL}")
    con.unregister("demand_rule_df")
    unknown = con.execute("SELECT * FROM demand_tag_unknown").df()
    if len(unknown):
        log.warning("%d UTM values (%d touches) map to no demand tag (config/demand_tags.yaml), "
                    "e.g. %s: reported in demand_tag_unknown, left untagged", len(unknown),
                    unknown["touches"].sum(), ", ".join(unknown["value"].head(EXAMPLES)))
    return unknown


def unknown_report(middle_db: Path) -> pd.DataFrame:
    """The UTM values no demand-tag rule knows, from a built middle layer (most touches first)."""
    with duckdb.connect(str(middle_db), read_only=True) as con:
        return con.execute("SELECT field, value, touches, people, first_seen, last_seen, "
                           "array_to_string(example_lids, ', ') AS examples FROM demand_tag_unknown "
                           "ORDER BY touches DESC, value").df()
