"""The buying committee of each company on the feature grid: the `company_committee` view.

Leads are bought by companies: several people of one account engaging together, senior ones
among them, from more than one department, is the strongest signal there is. This view
gathers, per company and grid time, what its people did in the `COMMITTEE_WINDOW` days
before (from the `person_interest` rows of that time) and who they are (their `person_fit`
row valid then: seniority and department as known at that time, never later). A person
counts for a company only once that link was known (`company_known_at`), as in
`company_engagement`. The account model (training/accounts.py) reads it with the company's
profile through the feature service `account_scoring_v1`.
"""

from __future__ import annotations

from leadscore.features.catalog import COMMITTEE_KINDS, COMMITTEE_WINDOW, InterestCatalog


def _kind_sums() -> list[str]:
    """The committee's events of each kind in the window: one column per group of event types."""
    return [f"sum({' + '.join(f'coalesce(x.{t}_{COMMITTEE_WINDOW}d, 0)' for t in types)})::BIGINT "
            f"AS committee_{name}_{COMMITTEE_WINDOW}d" for name, types in COMMITTEE_KINDS.items()]


def _seen_sql(asof_join: bool) -> str:
    """Each person's interest rows with their `person_fit` row valid then (the latest at or
    before the row's time). Without `asof_join` (Spark SQL has none) a range join keeps the
    latest fit row by rank: the same rows (a person has a fit row per change only)."""
    people = """FROM person_interest i JOIN person p USING (pid)
            {join} person_fit f ON f.pid = i.pid AND f.event_timestamp <= i.event_timestamp
            WHERE p.cid IS NOT NULL AND p.company_known_at <= i.event_timestamp"""
    columns = "i.*, f.seniority, f.department, f.is_decision_maker, p.cid"
    if asof_join:
        return f"SELECT {columns}\n            {people.format(join='ASOF LEFT JOIN')}"
    return f"""SELECT * FROM (
            SELECT {columns}, row_number() OVER (PARTITION BY i.pid, i.event_timestamp
                                                 ORDER BY f.event_timestamp DESC) AS fit_rank
            {people.format(join='LEFT JOIN')}) AS ranked
            WHERE fit_rank = 1"""


def company_committee_sql(catalog: InterestCatalog, asof_join: bool = True) -> str:
    """Per company and grid time, from the tables `person_interest`, `person_fit`, `person` and
    `company`: the people seen, the engaged ones, their seniority and departments, the events of
    each kind, the group's engaged people. Needs the interest counts of `COMMITTEE_WINDOW` days.
    `asof_join`: whether the engine has ASOF joins (`_seen_sql`)."""
    missing = [t for types in COMMITTEE_KINDS.values() for t in types if t not in catalog.event_types]
    if not {7, 30, COMMITTEE_WINDOW} <= set(catalog.windows) or missing:
        raise ValueError(f"the buying committee counts 7, 30 and {COMMITTEE_WINDOW}-day windows of "
                         f"{sorted({t for ts in COMMITTEE_KINDS.values() for t in ts})}: add "
                         f"7, 30 and {COMMITTEE_WINDOW} to features.windows_days and {missing} to "
                         "interest_event_types (config/features.yaml)")
    w = COMMITTEE_WINDOW
    engaged = f"x.events_{w}d > 0"
    sums = ",\n               ".join(_kind_sums())
    return f"""
        WITH seen AS (
            {_seen_sql(asof_join)}
        ), committee AS (
            SELECT x.cid, x.event_timestamp,
                   count(*)::BIGINT AS committee_people_seen,
                   count(*) FILTER (WHERE x.events_30d > 0)::BIGINT AS committee_engaged_30d,
                   count(*) FILTER (WHERE {engaged})::BIGINT AS committee_engaged_{w}d,
                   count(*) FILTER (WHERE {engaged} AND x.is_decision_maker = 1)::BIGINT
                       AS committee_decision_makers_engaged_{w}d,
                   count(DISTINCT x.department) FILTER (WHERE {engaged})::BIGINT
                       AS committee_departments_engaged_{w}d,
                   count(DISTINCT x.seniority) FILTER (WHERE {engaged})::BIGINT
                       AS committee_seniority_levels_engaged_{w}d,
                   max(x.events_30d)::BIGINT AS committee_top_person_events_30d,
                   sum(x.events_30d)::BIGINT AS committee_events_30d,
                   sum(x.events_{w}d)::BIGINT AS committee_events_{w}d,
                   {sums},
                   min(x.days_since_last_event)::DOUBLE AS committee_days_since_last_event,
                   -- the strongest single signals, which a sum over the committee dilutes
                   sum(x.events_7d)::BIGINT AS committee_events_7d,
                   max(x.events_7d)::BIGINT AS committee_top_person_events_7d,
                   sum(x.contact_sales_30d)::BIGINT AS committee_contact_sales_30d,
                   min(x.days_since_last_contact_sales)::DOUBLE AS committee_days_since_last_contact_sales,
                   min(x.days_since_last_form_submit)::DOUBLE AS committee_days_since_last_form_submit,
                   max(x.engagement_trend)::DOUBLE AS committee_top_engagement_trend,
                   count(*) FILTER (WHERE x.events_30d > 0 AND x.is_decision_maker = 1)::BIGINT
                       AS committee_decision_makers_engaged_30d
            FROM seen x
            GROUP BY x.cid, x.event_timestamp
        )
        SELECT m.*, sum(m.committee_engaged_{w}d)
                        OVER (PARTITION BY coalesce(c.eid, m.cid), m.event_timestamp)::BIGINT
                   AS group_people_engaged_{w}d
        FROM committee m JOIN company c USING (cid)
        ORDER BY m.cid, m.event_timestamp"""
