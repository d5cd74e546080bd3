"""`leadscore bench marketing --part truth`: the marketing analyses against the synthetic world's
hidden truth (data/truth).

- Won deals by first touch. The truth (`campaign_deals.parquet`, synth/campaigns.py) gives each
  won deal the first campaign that touched its true person before the opportunity. Found:
  `marketing/attribution.py`'s first touch. Two comparisons, both reported:
  - `raw`: against the truth as it is;
  - `observable`: against the truth recomputed from the touches some record ties to their
    person (`observable_sources`): a session counts only when its cookie was carried by a form
    fill of the same person that names them (an email or a phone: the only way this world ever
    identifies a browser; it has no logins carrying cookies), a form fill or a registration
    only when it carries an email, a phone or such a cookie. A session on a cookie that nobody
    ever identified is information no system has.
  Each deal missed against the raw truth is classed by its truth's first touch (`misses`):
  `unobservable` (above), `record_anonymous` (observable, but identity left the record bound to
  nobody: a cookie or address judged shared, a record quarantined), `person_split` (bound to
  another PID of the same true person) or `attribution` (bound to the deal's own PID: a fault
  of the attribution itself).
- The planted email frequency effect (`email_frequency.parquet`): people with no product
  interest open less past about two sends a week. Its turning point against the one
  `leadscore marketing frequency` finds, in sends a month; `ok` when within one send a month and
  people interested in a product have none. A world written before the effect existed has no
  such file: the figure is null, with a note, and the campaign figures still stand.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.attribution import NO_CAMPAIGN, deal_credits
from leadscore.marketing.frequency import NOT_INTERESTED, frequency_table
from leadscore.marketing.inputs import connect
from leadscore.synth.campaigns import deal_touches, deal_truth

FREQUENCY_TOLERANCE = 1.0  # sends a month
TOUCH_SOURCES = ("web_sessions", "form_fills", "email_activity", "event_registrations", "opportunities")


def read_world(settings: Settings) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """(raw sources the touches come from, the campaigns, the truth's record -> person map)."""
    sources = {name: pd.read_parquet(settings.raw_dir / f"{name}.parquet") for name in TOUCH_SOURCES}
    campaigns = pd.read_parquet(settings.raw_dir / "campaigns.parquet")
    records = pd.read_parquet(settings.truth_dir / "records.parquet",
                              columns=["source", "source_record_id", "person_key"])
    return sources, campaigns, records


def true_person(records: pd.DataFrame, source: str, ids: pd.Series) -> pd.Index:
    """The true person of each record `ids` of `source` (None where the truth has none)."""
    person = records.set_index(["source", "source_record_id"])["person_key"]
    return pd.Index(person.reindex(pd.MultiIndex.from_arrays([[source] * len(ids), ids])).to_numpy())


def observable_sources(sources: dict[str, pd.DataFrame], records: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """`sources` without the touches no record ties to their person (see the module docstring)."""
    forms, sessions, regs = sources["form_fills"], sources["web_sessions"], sources["event_registrations"]
    named = forms["email"].notna() | forms["phone"].notna()
    form_people = true_person(records, "form_fills", forms["form_fill_id"])
    identified = pd.MultiIndex.from_arrays([forms["cookie_id"][named], form_people[named.to_numpy()]])

    def cookie_identified(frame: pd.DataFrame, people: pd.Index) -> pd.Series:
        pairs = pd.MultiIndex.from_arrays([frame["cookie_id"], people])
        return pd.Series(pairs.isin(identified) & frame["cookie_id"].notna().to_numpy(), index=frame.index)

    session_people = true_person(records, "web_sessions", sessions["session_id"])
    return {**sources,
            "web_sessions": sessions[cookie_identified(sessions, session_people)],
            "form_fills": forms[named | cookie_identified(forms, form_people)],
            "event_registrations": regs[regs["email"].notna() | regs["phone"].notna()]}


def agreement(expected: pd.Series, found: pd.Series) -> dict:
    """Deal by deal and campaign by campaign, the won deals' first-touch campaigns compared."""
    compared = expected.index.intersection(found.index)
    same = expected[compared].fillna("-") == found[compared].fillna("-")
    per_campaign = pd.DataFrame({"truth": expected.value_counts(), "found": found.value_counts()}).fillna(0)
    return {"deal_agreement": round(float(same.mean()), 4) if len(compared) else None,
            "deals_differing": int((~same).sum()), "campaigns": len(per_campaign),
            "campaigns_equal": int((per_campaign["truth"] == per_campaign["found"]).sum()),
            "abs_diff_won_deals": int((per_campaign["truth"] - per_campaign["found"]).abs().sum())}


def classify_misses(missed: pd.Index, first_records: pd.DataFrame, observable: pd.DataFrame,
                    con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Why each missed deal differs, by its truth's first touch (see the module docstring);
    `truth_without_touch`: the truth saw no touch of the deal's person, yet one was credited."""
    first = first_records.reindex(missed).dropna(subset=["source"])
    con.register("first_df", first.rename_axis("opportunity_id").reset_index())
    first = con.execute("""
        SELECT f.*, r.pid AS record_pid, o.pid AS deal_pid FROM first_df f
        LEFT JOIN record r USING (source, source_record_id)
        LEFT JOIN outcome o USING (opportunity_id)""").df()
    con.unregister("first_df")
    seen = pd.MultiIndex.from_frame(observable[["source", "source_record_id"]])
    first["observable"] = pd.MultiIndex.from_frame(first[["source", "source_record_id"]]).isin(seen)

    def kind(touch: pd.Series) -> str:
        if not touch["observable"]:
            return "unobservable"
        if pd.isna(touch["record_pid"]):
            return "record_anonymous"
        return "attribution" if touch["record_pid"] == touch["deal_pid"] else "person_split"

    counts = first.apply(kind, axis=1).value_counts() if len(first) else pd.Series(dtype=int)
    classes = ("unobservable", "record_anonymous", "person_split", "attribution")
    return {c: int(counts.get(c, 0)) for c in classes} | {"truth_without_touch": len(missed) - len(first)}


def measure_campaign_truth(settings: Settings) -> dict:
    """Won deals per campaign by first touch against the truth, raw and observable."""
    truth = pd.read_parquet(settings.truth_dir / "campaign_deals.parquet")
    sources, campaigns, records = read_world(settings)
    visible = observable_sources(sources, records)
    observable = deal_truth(visible, campaigns, records).set_index("opportunity_id")["first_campaign_id"]
    _, raw_touches = deal_touches(sources, campaigns, records)
    first_records = raw_touches.groupby("opportunity_id")[["source", "source_record_id"]].first()
    _, seen = deal_touches(visible, campaigns, records)
    with connect(settings) as con:
        credits = deal_credits(con)
        found = credits[(credits["model"] == "first_touch") & credits["won"]]
        found = found.set_index("opportunity_id")["campaign_id"].replace(NO_CAMPAIGN, None)
        expected = truth.set_index("opportunity_id")["first_campaign_id"]
        raw = agreement(expected, found)
        missed = expected.index[expected.fillna("-") != found.reindex(expected.index).fillna("-")]
        misses = classify_misses(missed, first_records, seen, con)
    return {"won_deals": {"truth": len(expected), "found": len(found),
                          "compared": len(expected.index.intersection(found.index))},
            **raw, "observable": agreement(observable, found), "misses": misses}


def measure_frequency_truth(settings: Settings) -> dict | None:
    """Planted against recovered turning points, per interest group (sends a month); None for
    a world written before the planted effect."""
    path = settings.truth_dir / "email_frequency.parquet"
    if not path.is_file():
        return None
    planted = pd.read_parquet(path).set_index("interest")["turning_point_sends_per_month"]
    found = frequency_table(settings).groupby("interest")["turning_point"].first()
    groups = {}
    for group, value in planted.items():
        recovered = found.get(group)
        planted_value = None if pd.isna(value) else round(float(value), 2)
        recovered_value = None if recovered is None or pd.isna(recovered) else float(recovered)
        if planted_value is None or recovered_value is None:
            ok = planted_value is None and recovered_value is None
        else:
            ok = abs(recovered_value - planted_value) <= FREQUENCY_TOLERANCE
        groups[group] = {"planted": planted_value, "recovered": recovered_value, "ok": ok}
    return {**groups[NOT_INTERESTED], "by_interest": groups, "unit": "sends a month",
            "tolerance": FREQUENCY_TOLERANCE, "ok": all(g["ok"] for g in groups.values())}


def measure_truth(settings: Settings) -> dict:
    """The campaign figures and the frequency figure (null, with a note, in an older world)."""
    frequency = measure_frequency_truth(settings)
    notes = [] if frequency is not None else [
        f"no planted frequency effect at {settings.truth_dir / 'email_frequency.parquet'} (a world "
        "written before it): frequency_turning_point is null; `leadscore synth` writes it"]
    return {**measure_campaign_truth(settings), "frequency_turning_point": frequency, "notes": notes}
