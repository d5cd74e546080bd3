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
  Each deal missed against the raw truth is classed by its truth's first touch (`misses`), and
  each deal missed against the observable truth by its observable first touch
  (`observable.misses`): `unobservable` (above), `attribution` (the touch is bound to the
  deal's own PID: a fault of the attribution itself), `other_employer` (a record ties the
  touch to the person only at another employer than the one they had then: a mover's browser
  named only by forms filled after the move, or before it), `record_anonymous` (observable,
  but identity left the record bound to nobody: a cookie or address judged shared, a record
  quarantined) or `person_split` (bound to another PID of the same true person).
  The yardstick is the person, not the lead (a person at one employer): One ID's PID is one per
  human, and identity follows a mover wherever an identifier crosses the move (the same
  browser, mobile or personal address; on the default world 15 won deals of movers are credited
  with a touch from before the move, as the truth has it). A move that no identifier crosses
  stays split on purpose: a name and an address pattern alike at two employers are two
  namesakes far more often than one mover. Marketing's own tools agree there: B2B attribution
  credits an opportunity with the touches of its contacts, and stitches a browser's anonymous
  visits to the lead who converts on it, as that lead is (the person at the new employer), so
  such a deal's first touch is the one `found` gives; `other_employer` says which deals these
  are, without changing the observable truth.
- The planted email frequency effect (`email_frequency.parquet`): people with no product
  interest open less past about two sends a week. Its turning point against the one
  `leadscore marketing frequency` finds, in sends a month; `ok` when within one send a month and
  people interested in a product have none. A world written before the effect existed has no
  such file: the figure is null, with a note, and the campaign figures still stand.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.attribution import NO_CAMPAIGN, deal_credits
from leadscore.marketing.frequency import NOT_INTERESTED, frequency_table
from leadscore.marketing.inputs import connect
from leadscore.synth.campaigns import deal_touches

FREQUENCY_TOLERANCE = 1.0  # sends a month
RECORD_IDS = {"web_sessions": "session_id", "form_fills": "form_fill_id", "email_activity": "activity_id",
              "event_registrations": "registration_id"}
TOUCH_SOURCES = ("web_sessions", "form_fills", "email_activity", "event_registrations", "opportunities")


def read_world(settings: Settings) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """(raw sources the touches come from, the campaigns, the truth's record -> person map)."""
    sources = {name: pd.read_parquet(settings.raw_dir / f"{name}.parquet") for name in TOUCH_SOURCES}
    campaigns = pd.read_parquet(settings.raw_dir / "campaigns.parquet")
    records = pd.read_parquet(settings.truth_dir / "records.parquet",
                              columns=["source", "source_record_id", "person_key", "company_key"])
    return sources, campaigns, records


def lead_records(records: pd.DataFrame) -> pd.DataFrame:
    """The truth's record -> person map with each person taken at the employer of the record
    (`person_key@company_key`; the truth gives a mover's old company before the move): what
    records tie without knowing that the people of two employers are one mover."""
    lead = records["person_key"] + "@" + records["company_key"].fillna("")
    return records.assign(person_key=lead.where(records["person_key"].notna()))


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


def classify_misses(missed: pd.Index, first_records: pd.DataFrame, seen: pd.DataFrame,
                    seen_at_employer: pd.DataFrame, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Why each missed deal differs, by its first touch (`first_records`: source and record by
    deal; see the module docstring), against the deals' observable touches `seen` and those the
    person's own records at the employer of the time tie (`seen_at_employer`); `truth_without_
    touch`: the truth saw no touch of the deal's person, yet one was credited."""
    first = first_records.reindex(missed).dropna(subset=["source"])
    con.register("first_df", first.rename_axis("opportunity_id").reset_index())
    first = con.execute("""
        SELECT f.*, r.pid AS record_pid, o.pid AS deal_pid FROM first_df f
        LEFT JOIN record r USING (source, source_record_id)
        LEFT JOIN outcome o USING (opportunity_id)""").df()
    con.unregister("first_df")

    def within(touches: pd.DataFrame) -> np.ndarray:
        keys = ["opportunity_id", "source", "source_record_id"]
        return pd.MultiIndex.from_frame(first[keys]).isin(pd.MultiIndex.from_frame(touches[keys]))

    first["observable"], first["at_employer"] = within(seen), within(seen_at_employer)

    def kind(touch: pd.Series) -> str:
        if not touch["observable"]:
            return "unobservable"
        if touch["record_pid"] == touch["deal_pid"]:
            return "attribution"
        if not touch["at_employer"]:
            return "other_employer"
        return "record_anonymous" if pd.isna(touch["record_pid"]) else "person_split"

    counts = first.apply(kind, axis=1).value_counts() if len(first) else pd.Series(dtype=int)
    classes = ("unobservable", "attribution", "other_employer", "record_anonymous", "person_split")
    return {c: int(counts.get(c, 0)) for c in classes} | {"truth_without_touch": len(missed) - len(first)}


def record_keys(sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(source, source_record_id) of every row of the touch sources in `sources`."""
    return pd.concat([pd.DataFrame({"source": name, "source_record_id": sources[name][column].to_numpy()})
                      for name, column in RECORD_IDS.items()], ignore_index=True)


def first_campaigns(sources: dict[str, pd.DataFrame], campaigns: pd.DataFrame,
                    records: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """(each won deal's first campaign, None for a deal without touches; the deals' touches) over
    `sources` with `records`' person of each record (`deal_touches`, as `deal_truth` does)."""
    deals, touches = deal_touches(sources, campaigns, records)
    first = touches.groupby("opportunity_id")["campaign_id"].first().reindex(deals["opportunity_id"])
    return first.astype(object).where(first.notna(), None), touches


def first_touch_records(touches: pd.DataFrame) -> pd.DataFrame:
    """Per deal, the source and record of its first touch (`deal_touches`' order)."""
    return touches.groupby("opportunity_id")[["source", "source_record_id"]].first()


def missed_deals(expected: pd.Series, found: pd.Series) -> pd.Index:
    """The deals whose first-touch campaign differs (a deal found without one included)."""
    return expected.index[expected.fillna("-") != found.reindex(expected.index).fillna("-")]


def measure_campaign_truth(settings: Settings) -> dict:
    """Won deals per campaign by first touch against the truth, raw and observable, each missed
    deal classed."""
    truth = pd.read_parquet(settings.truth_dir / "campaign_deals.parquet")
    sources, campaigns, records = read_world(settings)
    _, raw_touches = first_campaigns(sources, campaigns, records)
    observable, seen = first_campaigns(observable_sources(sources, records), campaigns, records)
    seen_at_employer = seen.merge(record_keys(observable_sources(sources, lead_records(records))))
    with connect(settings) as con:
        credits = deal_credits(con)
        found = credits[(credits["model"] == "first_touch") & credits["won"]]
        found = found.set_index("opportunity_id")["campaign_id"].replace(NO_CAMPAIGN, None)
        expected = truth.set_index("opportunity_id")["first_campaign_id"]
        raw = agreement(expected, found)
        misses = classify_misses(missed_deals(expected, found), first_touch_records(raw_touches), seen,
                                 seen_at_employer, con)
        observable_misses = classify_misses(missed_deals(observable, found), first_touch_records(seen), seen,
                                            seen_at_employer, con)
    return {"won_deals": {"truth": len(expected), "found": len(found),
                          "compared": len(expected.index.intersection(found.index))},
            **raw, "observable": {**agreement(observable, found), "misses": observable_misses},
            "misses": misses}


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
