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


# Tricky values and what the rules made of them when they were pandas string methods (the
# semantics the SQL rules keep): Unicode whitespace (no-break, ideographic, line separator),
# case, '+tags', provider aliases and dots, full-width letters and ligatures (NFKD), text that
# folds to nothing, blanks, malformed addresses and numbers.
EMAILS = {
    " J.Smith+news@GoogleMail.com ": "jsmith@gmail.com", "A.B@Gmail.COM": "ab@gmail.com",
    "a b@x.co": "ab@x.co", "a\u00a0b@x.co": "ab@x.co", "\u3000x@y.cn\u3000": "x@y.cn",
    "\tTAB@Tab.ORG\n": "tab@tab.org", "Ünïcode@exämple.de": "ünïcode@exämple.de",
    "x@free.com": "x@free.com", "first.last+@gmail.com": "firstlast@gmail.com",
    "+tag@gmail.com": "@gmail.com", "x@y.com\n": "x@y.com", "bad@": None, "no-at-sign": None,
    "a@b@c.com": None, "x@y.c": None, "x@y.c0m": None, "": None, "   ": None, None: None,
}
PHONES = {
    "+86 138-0013-8000": "+8613800138000", "0086 10 6552 9988": "+861065529988",
    "(021) 5555 0000": "+862155550000", "13800138000": "+8613800138000",
    "+1 (650) 253-0000": "+16502530000", "\u00a0+86 138 0013 8000\u00a0": "+8613800138000",
    "12": None, "not a phone": None, "++86 138": None, "+44 20 7946 0958 ext 12": None,
    "  ": None, "": None, None: None,
}
# raw -> (token with the rules' nicknames, token without)
NAMES = {
    "  Bill ": ("william", "bill"), "José": ("jose", "jose"), "ZHANG": ("zhang", "zhang"),
    "o'brien": ("o'brien", "o'brien"), "Anne-Marie": ("anne-marie", "anne-marie"), "x1": ("x", "x"),
    "Ｊｏｈｎ": ("john", "john"), "Søren": ("sren", "sren"), "张伟": (None, None),
    "Zoë\u00a0Ann": ("zoe ann", "zoe ann"), "Ｌｉｚ": ("elizabeth", "liz"), "ǅemal": ("dzemal", "dzemal"),
    "  tIm  ": ("timothy", "tim"), "Jean\u2028Luc": ("jeanluc", "jeanluc"),
    "d'Arcy-Smith": ("d'arcy-smith", "d'arcy-smith"), "\u00a0": (None, None), "": (None, None),
    None: (None, None),
}
FULL_NAMES = {
    "SMITH, John": ("John", "SMITH"), "Madonna": (None, "Madonna"), ",": (None, None),
    "  ": (None, None), "Smith,John": ("John", "Smith"), "a, b c": ("c", "a"),
    "Jean\u00a0Luc Picard": ("Jean", "Picard"), "  Anne   Marie  Lee ": ("Anne", "Lee"),
    "O'Neil,": (None, "O'Neil"), ", Cher": (None, "Cher"), None: (None, None),
}
COMPANIES = {
    "Acme China Co., Ltd.": "acme china", "Ünïcode GmbH": "unicode", "&": "&",
    "Société Générale S.A.": "societe generale s a", "ＡＣＭＥ\u3000Ｃｏ": "acme", "a_b-c Ltd": "a_b c",
    "Ltd": None, "co. ltd. inc.": None, "华为技术有限公司": None, "Foo\u00a0Bar  Co": "foo bar",
    "L'Oréal": "l oreal", "AT&T Inc.": "at&t", "  ": None, None: None,
}


def _values(out: pd.Series) -> list:
    return [None if pd.isna(value) else value for value in out]


def test_emails_as_the_pandas_rules_had_them(std_rules):
    assert _values(std.email(pd.Series(list(EMAILS), dtype=object), std_rules)) == list(EMAILS.values())


def test_phones_as_the_pandas_rules_had_them(std_rules):
    assert _values(std.phone(pd.Series(list(PHONES), dtype=object), std_rules)) == list(PHONES.values())


def test_name_tokens_as_the_pandas_rules_had_them(std_rules):
    raw = pd.Series(list(NAMES), dtype=object)
    assert _values(std.name_token(raw, std_rules)) == [given for given, _ in NAMES.values()]
    assert _values(std.name_token(raw)) == [plain for _, plain in NAMES.values()]


def test_full_names_split_as_the_pandas_rules_had_them():
    parts = std.split_full_name(pd.Series(list(FULL_NAMES), dtype=object))
    assert list(zip(_values(parts["first_name"]), _values(parts["last_name"]), strict=True)) == list(
        FULL_NAMES.values())


def test_company_names_as_the_pandas_rules_had_them(std_rules):
    out = std.company_name(pd.Series(list(COMPANIES), dtype=object), std_rules)
    assert _values(out) == list(COMPANIES.values())


def test_the_whitespace_class_is_pythons():
    """Every code point `str.isspace` holds is in the class (trimmed), none lies past its end,
    and a look-alike that is not whitespace (zero-width space) stays."""
    assert not any(chr(point).isspace() for point in range(0x3001, 0x110000))
    out = std.blank_to_na(pd.Series([f"{chr(p)}x{chr(p)}" for p in range(0x3001) if chr(p).isspace()]))
    assert set(out) == {"x"}
    assert std.blank_to_na(pd.Series(["\u200bx"])).iloc[0] == "\u200bx"
