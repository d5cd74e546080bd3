"""Masking of personal data: recognisable, not usable."""

from __future__ import annotations

from leadscore.access.masking import mask_email, mask_emails_in, mask_phone, mask_record


def test_phones_keep_the_first_three_and_last_four_digits():
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone("138-0013-8000") == "138****8000"
    assert mask_phone("12345") == "*****" and mask_phone(None) is None


def test_one_number_masks_alike_however_it_is_written():
    for written in ("+8613800138000", "+86 138 0013 8000", "0086-138-0013-8000", "138 0013 8000"):
        assert mask_phone(written) == "138****8000"
    assert mask_phone("+1 415 555 1864") == "415***1864"  # the country code is never kept
    assert mask_phone("+44 20 7946 0958") == "207***0958"


def test_emails_keep_the_first_letter_and_the_domain():
    assert mask_email("john.smith@example.com") == "j***@example.com"
    assert mask_record({"email": "a@b.cn", "phone": "13800138000", "title": "CTO"}) == {
        "email": "a***@b.cn", "phone": "138****8000", "title": "CTO"}
    assert mask_record({"email": "a@b.cn"}, full=True) == {"email": "a@b.cn"}


def test_emails_inside_event_properties_are_masked_even_url_encoded():
    properties = {"url": "https://t.example/c?to=john.smith%40acme.com&id=7",
                  "subject": "Hi jane@acme.com", "tags": ["x y@z.io"], "pageviews": 3}
    assert mask_emails_in(properties) == {
        "url": "https://t.example/c?to=j***%40acme.com&id=7", "subject": "Hi j***@acme.com",
        "tags": ["x y***@z.io"], "pageviews": 3}
