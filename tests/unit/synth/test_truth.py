"""The truth agrees with the raw records it generated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.synth import World

EMAIL_COLUMNS = {
    "crm_contacts": "email",
    "form_fills": "email",
    "event_registrations": "email",
    "email_activity": "email_address",
    "orders": "email",
    "user_accounts": "email",
}


def one_edit_apart(a: str, b: str) -> bool:
    """True if `a` is `b` with one character dropped or two neighbours swapped."""
    if len(a) == len(b) - 1:
        return any(b[:i] + b[i + 1:] == a for i in range(len(b)))
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
            and a[diff[1]] == b[diff[0]]
    return False


def test_every_raw_row_is_in_records_exactly_once(world: World):
    records = world.truth["records"]
    assert not records.duplicated(["source", "source_record_id"]).any()
    for name, frame in world.sources.items():
        ids = records.loc[records["source"] == name, "source_record_id"]
        assert len(ids) == len(frame), name
        assert set(ids) == set(frame.iloc[:, 0]), name


def test_record_keys_exist_in_the_truth(world: World):
    records, truth = world.truth["records"], world.truth
    people = records["person_key"].dropna()
    companies = records["company_key"].dropna()
    assert people.isin(truth["people"]["person_key"]).all()
    assert companies.isin(truth["companies"]["company_key"]).all()
    assert truth["companies"]["group_key"].isin(truth["groups"]["group_key"]).all()
    assert truth["people"]["company_key"].isin(truth["companies"]["company_key"]).all()
    # only crm_accounts rows and anonymous sessions lack a person
    no_person = records.loc[records["person_key"].isna(), "source"]
    assert set(no_person) == {"crm_accounts", "web_sessions"}


def test_record_company_is_the_persons_company_at_that_time(world: World, labelled, people):
    rows = labelled["form_fills"]
    person = people.loc[rows["person_key"]]
    current = rows["company_key"].to_numpy() == person["company_key"].to_numpy()
    previous = rows["company_key"].to_numpy() == person["previous_company_key"].to_numpy()
    assert (current | previous).all()
    before_move = rows["submitted_at"].to_numpy() < person["moved_at"].to_numpy()
    assert (previous == before_move).all()


def test_raw_emails_normalise_to_the_true_persons_addresses(world: World, labelled, people):
    shared = set(world.truth["companies"]["shared_inbox"])
    for source, column in EMAIL_COLUMNS.items():
        rows = labelled[source].dropna(subset=[column])
        email = rows[column].str.strip().str.lower().to_numpy()
        person = people.loc[rows["person_key"]]
        own = ((email == person["work_email"].to_numpy())
               | (email == person["personal_email"].to_numpy())
               | (email == person["previous_work_email"].to_numpy()))
        team = np.isin(email, list(shared))
        odd = ~own & ~team
        assert odd.mean() < 0.04, source
        typos = [one_edit_apart(e, w) or one_edit_apart(e, p)
                 for e, w, p in zip(email[odd], person["work_email"].to_numpy()[odd],
                                    person["previous_work_email"].fillna("").to_numpy()[odd],
                                    strict=True)]
        assert all(typos), (source, email[odd][~np.asarray(typos, dtype=bool)][:5])


def test_opportunities_follow_their_people_and_accounts(world: World, labelled, people):
    s = world.sources
    opps = labelled["opportunities"]
    contacts = labelled["crm_contacts"].set_index("contact_id")
    assert opps["contact_id"].notna().all() and opps["account_id"].notna().all()
    assert (contacts.loc[opps["contact_id"], "person_key"].to_numpy()
            == opps["person_key"].to_numpy()).all()
    assert (contacts.loc[opps["contact_id"], "created_at"].to_numpy()
            <= opps["created_at"].to_numpy()).all()
    accounts = labelled["crm_accounts"].set_index("account_id")
    assert (accounts.loc[opps["account_id"], "company_key"].to_numpy()
            == opps["company_key"].to_numpy()).all()
    closed = opps["closed_at"].notna()
    assert (opps.loc[closed, "closed_at"] > opps.loc[closed, "created_at"]).all()
    assert opps.loc[~closed, "stage"].eq("open").all()
    first_win = opps[opps["stage"] == "won"]["closed_at"].min()
    assert s["orders"]["ordered_at"].min() >= first_win


def test_email_opens_follow_sends_and_clicks_follow_opens(world: World):
    email = world.sources["email_activity"]
    key = ["campaign_id", "email_address"]
    first = email.pivot_table(index=key, columns="activity", values="occurred_at",
                              aggfunc="min")
    opened = first["open"].notna()
    assert (first.loc[opened, "send"] <= first.loc[opened, "open"]).all()
    clicked = first["click"].notna()
    assert first.loc[clicked, "open"].notna().all()
    assert (first.loc[clicked, "open"] <= first.loc[clicked, "click"]).all()
    assert email.loc[email["activity"] == "click", "url"].notna().all()
    assert email.loc[email["activity"] != "click", "url"].isna().all()


def test_cookies_belong_to_one_person_or_none(world: World, labelled):
    sessions = labelled["web_sessions"]
    owners = sessions.groupby("cookie_id")["person_key"].nunique(dropna=False)
    assert owners.max() == 1
    truth = world.truth["cookies"].set_index("cookie_id")["person_key"]
    assert truth.index.is_unique
    mapped = truth.reindex(sessions["cookie_id"]).to_numpy()
    assert pd.Series(mapped).equals(pd.Series(sessions["person_key"].to_numpy()))
    per_person = world.truth["cookies"].dropna().groupby("person_key").size()
    assert set(per_person) == {1, 2, 3}
    # a form's cookie is its submitter's
    forms = labelled["form_fills"].dropna(subset=["cookie_id"])
    assert (truth.loc[forms["cookie_id"]].to_numpy() == forms["person_key"].to_numpy()).all()


def test_timestamps_fall_in_the_window(world: World, small):
    end = pd.Timestamp(small.end_date, tz="UTC") + pd.Timedelta(days=1)
    start = end - pd.DateOffset(months=small.months)
    for name, column in (("web_sessions", "started_at"), ("form_fills", "submitted_at"),
                         ("email_activity", "occurred_at"), ("orders", "ordered_at"),
                         ("event_registrations", "registered_at"),
                         ("opportunities", "created_at"), ("user_accounts", "registered_at")):
        stamps = world.sources[name][column]
        assert stamps.min() >= start and stamps.max() < end, name
        assert stamps.is_monotonic_increasing, name
