import pandas as pd

from leadscore.identity import standardise as std


def test_email_trims_lowercases_and_rejects_non_addresses():
    raw = pd.Series([" John.Smith@Veltrix.COM ", "not-an-email", None, ""])
    out = std.email(raw)
    assert out.iloc[0] == "john.smith@veltrix.com"
    assert out.iloc[1:].isna().all()


def test_phone_variants_of_one_number_become_one_e164(std_rules):
    raw = pd.Series(["+86 138-0013-8000", "13800138000", "(+86) 138 0013 8000",
                     "0086 138 0013 8000", "garbage", None])
    out = std.phone(raw, std_rules)
    assert set(out.iloc[:4]) == {"+8613800138000"}
    assert out.iloc[4:].isna().all()


def test_nicknames_map_to_canonical_given_name(std_rules):
    out = std.name_token(pd.Series(["Bill", "WILLIAM", "Liz", "Zhang"]), std_rules)
    assert list(out) == ["william", "william", "elizabeth", "zhang"]


def test_name_key_ignores_order_and_needs_both_parts():
    first = pd.Series(["wei", "zhang", None])
    last = pd.Series(["zhang", "wei", "smith"])
    key = std.name_key(first, last)
    assert key.iloc[0] == key.iloc[1] == "wei zhang"
    assert pd.isna(key.iloc[2])


def test_name_key_maps_a_nickname_in_either_part(std_rules):
    """'Su Dan' written surname first is 'Dan Su'; 'Tim' is 'Timothy'; other names stay apart."""
    first = std.name_token(pd.Series(["Dan", "Su", "Tim", "Timothy", "Mark"]), std_rules)
    last = std.name_token(pd.Series(["Su", "Dan", "Wright", "Wright", "Wright"]))
    key = std.name_key(first, last, std_rules)
    assert key.iloc[0] == key.iloc[1] and key.iloc[2] == key.iloc[3] == "timothy wright"
    assert key.iloc[4] != key.iloc[3]


def test_split_full_name_handles_comma_order():
    out = std.split_full_name(pd.Series(["SMITH, John", "John Smith", "Cher"]))
    assert list(out["first_name"].iloc[:2]) == ["John", "John"]
    assert list(out["last_name"].iloc[:2]) == ["SMITH", "Smith"]
    assert pd.isna(out["first_name"].iloc[2])


def test_company_names_lose_legal_suffixes_and_groups_lose_regions(std_rules):
    names = std.company_name(pd.Series(["Veltrix China Co., Ltd.", "VELTRIX (CHINA)",
                                        "Veltrix East China Ltd"]), std_rules)
    assert list(names) == ["veltrix china", "veltrix china", "veltrix east china"]
    assert set(std.group_name(names, std_rules)) == {"veltrix"}


def test_work_domain_skips_free_mail(std_rules):
    emails = pd.Series(["a@veltrix.com", "b@gmail.com"])
    out = std.work_domain(emails, std_rules)
    assert out.iloc[0] == "veltrix.com" and pd.isna(out.iloc[1])


def test_provider_variants_of_one_mailbox_become_one_address(std_rules):
    raw = pd.Series(["J.Smith+news@googlemail.com", "jsmith@gmail.com", "j.smith@veltrix.com"])
    out = std.email(raw, std_rules)
    assert out.iloc[0] == out.iloc[1] == "jsmith@gmail.com"
    assert out.iloc[2] == "j.smith@veltrix.com"  # dots matter at other providers
