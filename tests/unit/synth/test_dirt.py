"""Each kind of dirt the identity stage must handle is really in the sources."""

from __future__ import annotations

import re

import pandas as pd

from leadscore.synth import World
from leadscore.synth.vocab import NICKNAMES

TYPED = ("form_fills", "event_registrations", "crm_contacts", "orders", "user_accounts")


def typed_emails(labelled) -> pd.DataFrame:
    rows = [labelled[s][["email", "person_key", "company_key"]].assign(source=s) for s in TYPED]
    rows.append(labelled["email_activity"].rename(columns={"email_address": "email"})[
        ["email", "person_key", "company_key"]].assign(source="email_activity"))
    out = pd.concat(rows, ignore_index=True).dropna(subset=["email"])
    return out.assign(norm=out["email"].str.strip().str.lower())


def typed_phones(labelled) -> pd.DataFrame:
    sources = ("form_fills", "event_registrations", "crm_contacts")
    rows = pd.concat([labelled[s][["phone", "person_key", "company_key"]] for s in sources],
                     ignore_index=True).dropna(subset=["phone"])
    return rows.assign(digits=rows["phone"].str.replace(r"\D", "", regex=True))


def test_email_case_and_whitespace_variants(labelled):
    emails = typed_emails(labelled)["email"]
    assert (emails != emails.str.strip()).sum() >= 3
    assert emails.str.contains(r"[A-Z]").sum() >= 10
    assert emails.str.fullmatch(r"[A-Z][a-z]+\.[A-Z][a-z]+@.+").any()  # John.Smith@Veltrix.Com


def test_personal_and_work_addresses_of_one_person(labelled, people):
    emails = typed_emails(labelled)
    person = people.loc[emails["person_key"]]
    work = emails["norm"].to_numpy() == person["work_email"].to_numpy()
    personal = emails["norm"].to_numpy() == person["personal_email"].to_numpy()
    both = set(emails["person_key"][work]) & set(emails["person_key"][personal])
    assert len(both) >= 10
    domains = emails["norm"][personal].str.split("@").str[1]
    assert {"qq.com", "163.com", "gmail.com"} <= set(domains)


def test_email_typos(labelled, people):
    emails = typed_emails(labelled)
    person = people.loc[emails["person_key"]]
    known = set(people["work_email"]) | set(people["personal_email"].dropna()) | set(
        people["previous_work_email"].dropna())
    shared = emails["norm"].str.split("@").str[0].isin(
        ["info", "sales", "contact", "marketing", "purchasing", "office"])
    unknown = ~emails["norm"].isin(known) & ~shared
    assert unknown.sum() >= 5
    # a typo keeps the domain and the length within one character
    same_domain = (emails["norm"][unknown].str.split("@").str[1].to_numpy()
                   == person["work_email"][unknown.to_numpy()].str.split("@").str[1].to_numpy())
    assert same_domain.mean() > 0.9


def test_shared_inboxes_are_used_by_several_people(world: World, labelled):
    emails = typed_emails(labelled)
    shared = emails[emails["norm"].isin(set(world.truth["companies"]["shared_inbox"]))]
    people_per_inbox = shared.groupby("norm")["person_key"].nunique()
    assert (people_per_inbox >= 2).sum() >= 2
    assert shared["norm"].str.match(r"(info|sales|contact|marketing|purchasing|office)@").all()


def test_one_phone_number_in_many_formats(labelled, people):
    phones = typed_phones(labelled)
    true = people.loc[phones["person_key"], "phone"].str.lstrip("+").to_numpy()
    own = pd.Series([t.endswith(d.lstrip("0")) if d else False
                     for t, d in zip(true, phones["digits"], strict=True)], index=phones.index)
    formats = phones[own.to_numpy()].groupby("person_key")["phone"].nunique()
    assert (formats >= 2).sum() >= 5
    styles = {
        "e164": r"\+86\d{11}",
        "dashed": r"\+86 \d{3}-\d{4}-\d{4}",
        "bare": r"1\d{10}",
        "bracketed": r"\(\+86\) \d{3} \d{4} \d{4}",
        "double_zero": r"0086 \d{3} \d{4} \d{4}",
    }
    for name, pattern in styles.items():
        assert phones["phone"].str.fullmatch(pattern).any(), name


def test_switchboards_are_shared_by_several_people(world: World, labelled):
    phones = typed_phones(labelled)
    boards = world.truth["companies"]["switchboard_phone"].str.lstrip("+")
    on_board = phones[phones["digits"].map(
        lambda d: any(b.endswith(d.lstrip("0")) for b in boards) if len(d) > 6 else False)]
    assert (on_board.groupby("digits")["person_key"].nunique() >= 2).any()


def test_nicknames_case_variants_and_swapped_names(labelled, people):
    rows = pd.concat([labelled[s][["first_name", "last_name", "person_key"]]
                      for s in ("form_fills", "crm_contacts")], ignore_index=True)
    true = people.loc[rows["person_key"]]
    first, last = true["first_name"].to_numpy(), true["last_name"].to_numpy()
    nickname = rows["first_name"].to_numpy() == true["first_name"].map(NICKNAMES).to_numpy()
    assert nickname.sum() >= 3
    assert (rows["last_name"].to_numpy() == pd.Series(last).str.upper().to_numpy()).sum() >= 3
    assert (rows["first_name"].to_numpy() == pd.Series(first).str.lower().to_numpy()).sum() >= 3
    swapped = (rows["first_name"].to_numpy() == last) & (rows["last_name"].to_numpy() == first)
    assert swapped.sum() >= 3


def test_one_field_names_in_several_orders(world: World):
    names = world.sources["event_registrations"]["full_name"].dropna()
    assert names.str.fullmatch(r"[A-Z' ]+, [A-Z][a-z]+").any()  # SMITH, John
    assert names.str.fullmatch(r"[a-z' ]+").any()  # zhang wei
    assert names.str.fullmatch(r"[A-Z][a-z']+ [A-Z][a-z]+").any()


def test_company_name_variants_and_blanks(world: World):
    names = pd.concat([world.sources["form_fills"]["company_name"],
                       world.sources["event_registrations"]["company_name"]])
    assert names.isna().any()
    present = names.dropna()
    assert present.str.endswith(" Co., Ltd.").any()
    assert present.str.fullmatch(r"[A-Z]+ \([A-Z ]+\)").any()  # VELTRIX (CHINA)
    assert present.str.endswith(" Ltd").any()
    assert (present == present.str.lower()).any()
    assert present.isin(world.truth["companies"]["name"]).mean() < 0.8


def test_missing_fields(world: World):
    s = world.sources
    for name, columns in (("form_fills", ["email", "phone", "company_name", "job_title"]),
                          ("crm_accounts", ["website", "industry", "employees",
                                            "funding_stage", "annual_revenue_usd"]),
                          ("crm_contacts", ["account_id", "phone", "title"])):
        for column in columns:
            assert s[name][column].isna().any(), f"{name}.{column}"


def test_people_who_moved_show_old_and_new_work_addresses(labelled, people):
    emails = typed_emails(labelled)
    person = people.loc[emails["person_key"]]
    old = emails["norm"].to_numpy() == person["previous_work_email"].to_numpy()
    new = emails["norm"].to_numpy() == person["work_email"].to_numpy()
    both = set(emails["person_key"][old]) & set(emails["person_key"][new])
    assert len(both) >= 2
    assert people.loc[list(both), "previous_company_key"].notna().all()


def test_unusable_rows_are_rare_but_present(world: World):
    forms = world.sources["form_fills"]
    blank = forms[["email", "phone", "cookie_id"]].isna().all(axis=1)
    regs = world.sources["event_registrations"]
    nameless = regs[["full_name", "email", "phone"]].isna().all(axis=1)
    for rows, share in ((blank, blank.mean()), (nameless, nameless.mean())):
        assert rows.sum() >= 1 and share < 0.01


def test_duplicate_accounts_and_contacts(labelled):
    accounts = labelled["crm_accounts"]
    per_company = accounts.groupby("company_key")["account_name"].agg(["size", "nunique"])
    assert ((per_company["size"] == 2) & (per_company["nunique"] == 2)).any()
    contacts = labelled["crm_contacts"]
    assert contacts.groupby("person_key").size().max() >= 2


def test_subsidiaries_are_named_after_their_group(world: World):
    companies = world.truth["companies"].merge(world.truth["groups"], on="group_key",
                                               suffixes=("", "_group"))
    assert companies.apply(lambda r: r["name"].startswith(r["name_group"]), axis=1).all()
    assert companies["name"].is_unique
    assert (companies["name"] != companies["name_group"]).any()
    assert re.fullmatch(r"[a-z\-]+(\.[a-z]+)+", companies["domain"].iloc[0])
