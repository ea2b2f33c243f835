"""PII detection: each kind with its checksum, positions and masking."""

from __future__ import annotations

import pytest

from textnlp.validation import find_pii, iban_valid, luhn_valid, mask_pii


def kinds(text: str) -> list[str]:
    return [f.kind for f in find_pii(text)]


def test_luhn_valid_and_invalid_card() -> None:
    assert luhn_valid("4111 1111 1111 1111")
    assert not luhn_valid("4111 1111 1111 1112")
    assert kinds("card 4111-1111-1111-1111 ok") == ["credit_card"]
    assert kinds("card 4111 1111 1111 1112 ok") == []


def test_iban_mod_97() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("GB83 WEST 1234 5698 7654 32")
    assert kinds("pay to DE89 3704 0044 0532 0130 00 please") == ["iban"]
    assert kinds("pay to DE88 3704 0044 0532 0130 00 please") == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+x@mail.example.org today", "email"),
        ("call +44 20 7946 0958 now", "phone"),
        ("call (415) 555-0132 now", "phone"),
        ("server 192.168.10.254 is down", "ip_address"),
        ("host 2001:db8::8a2e:370:7334 answers", "ip_address"),
        ("ssn 123-45-6789 on file", "ssn"),
    ],
)
def test_each_kind(text: str, kind: str) -> None:
    assert kinds(text) == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "on 2024-01-15 at 10:30:00",
        "version 1.2.3",
        "100 200 300 units",
        "999.1.1.1",
        "ssn 000-12-3456",
    ],
)
def test_no_false_positive(text: str) -> None:
    assert find_pii(text) == []


def test_positions_and_masked_copy() -> None:
    text = "Mail a@b.com or 4111111111111111."
    findings = find_pii(text)
    assert [(f.kind, text[f.start : f.end]) for f in findings] == [
        ("email", "a@b.com"),
        ("credit_card", "4111111111111111"),
    ]
    assert mask_pii(text) == "Mail [EMAIL] or [CREDIT_CARD]."


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Pay DE89 3704 0044 0532 0130 00 EUR today", "iban", "DE89 3704 0044 0532 0130 00"),
        ("IBAN GB82 WEST 1234 5698 7654 32 BIC NWBKGB2L", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban de89 3704 0044 0532 0130 00", "iban", "de89 3704 0044 0532 0130 00"),
        ("Card 4111 1111 1111 1111 12/25", "credit_card", "4111 1111 1111 1111"),
        ("Card 4111 1111 1111 1111 123", "credit_card", "4111 1111 1111 1111"),
        ("ref 12 4111 1111 1111 1111", "credit_card", "4111 1111 1111 1111"),
        ("Phone 555-123-4567 12 times", "phone", "555-123-4567"),
        ("call +49 30 1234567", "phone", "+49 30 1234567"),
    ],
)
def test_a_finding_with_tokens_run_on_is_still_found(text: str, kind: str, value: str) -> None:
    """A greedy match that takes a trailing (or leading) token fails its check: the finding
    inside it is what is reported."""
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == (kind, value)


@pytest.mark.parametrize(
    ("text", "kind", "hidden"),
    [
        ("mail john\u200b@example.com now", "email", "john\u200b@example.com"),
        (
            "card 4111\u00a01111\u00a01111\u00a01111 ok",
            "credit_card",
            "4111\u00a01111\u00a01111\u00a01111",
        ),
        ("ssn 123\u200b-45-6789 ok", "ssn", "123\u200b-45-6789"),
        (
            "card \uff14\uff11\uff11\uff11 1111 1111 1111",
            "credit_card",
            "\uff14\uff11\uff11\uff11 1111 1111 1111",
        ),
        (
            "tel \uff10\uff13\uff10 \uff11\uff12\uff13\uff14\uff15\uff16\uff17",
            "phone",
            "\uff10\uff13\uff10 \uff11\uff12\uff13\uff14\uff15\uff16\uff17",
        ),
    ],
)
def test_unicode_that_hides_data_from_a_pattern_is_undone(
    text: str, kind: str, hidden: str
) -> None:
    """Zero-width characters, no-break spaces and full-width digits: found, and the span is
    the original text's, so the mask covers all of it."""
    (finding,) = find_pii(text)
    assert finding.kind == kind and finding.value == hidden
    assert text[finding.start : finding.end] == hidden
    assert mask_pii(text) == text.replace(hidden, f"[{kind.upper()}]")


@pytest.mark.parametrize("text", ["on 01.05.2024", "Delivered 09-12-2023", "since 2024-05-01"])
def test_dates_are_not_phone_numbers(text: str) -> None:
    assert find_pii(text) == []


def test_an_email_cannot_start_inside_a_run_of_its_own_characters() -> None:
    """Each start inside such a run would scan the rest of it again: quadratic time on a long
    run of '%' (an API body of them held the server for minutes)."""
    from textnlp.validation.pii import _EMAIL

    run = "%" * 50 + "a@example.com"
    assert _EMAIL.search(run).start() == 0  # type: ignore[union-attr]
    assert all(_EMAIL.match(run, i) is None for i in range(1, 50))
    assert find_pii("%" * 20_000) == []


def test_text_dense_with_findings_finds_each_once_in_order() -> None:
    # Each detector's spans are merged in once it is done (they were inserted one by one).
    unit = "mail a.b{n}@example.com or call +44 20 7946 0{m:03d}, card 4111 1111 1111 1111. "
    text = "".join(unit.format(n=i, m=i % 1000) for i in range(500))
    found = find_pii(text)
    assert [f.kind for f in found[:3]] == ["email", "phone", "credit_card"]
    assert len(found) == 1500
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    assert {f.value for f in found if f.kind == "credit_card"} == {"4111 1111 1111 1111"}


# --- the audit's cases: each failed before its fix -------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        # an IBAN followed by words: every country's length is tried, not the last two cuts
        (
            "My IBAN is DE89 3704 0044 0532 0130 00 and my name is Max.",
            "iban",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("GB82 WEST 1234 5698 7654 32 is the account", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("IBAN:DE89370400440532013000 and more words here", "iban", "DE89370400440532013000"),
        ("口座DE89 3704 0044 0532 0130 00です", "iban", "DE89 3704 0044 0532 0130 00"),
        # e-mail and phone glued to CJK text: CJK characters are no part of either
        ("请联系john.doe@example.com获取详情", "email", "john.doe@example.com"),
        ("メールはtaro@example.jpまで", "email", "taro@example.jp"),
        ("電話090-1234-5678まで", "phone", "090-1234-5678"),
        ("电话+86 138 0013 8000", "phone", "+86 138 0013 8000"),
        # an international number whose first group is one digit; a bracketed area code
        ("call +33 6 12 34 56 78 now", "phone", "+33 6 12 34 56 78"),
        ("call +61 4 1234 5678 now", "phone", "+61 4 1234 5678"),
        ("Tel (030) 1234567", "phone", "(030) 1234567"),
        # internationalised e-mail (RFC 6531)
        ("write to müller@example.de today", "email", "müller@example.de"),
        ("write to josé.garcía@correo.es today", "email", "josé.garcía@correo.es"),
        ("write to info@bücher.de today", "email", "info@bücher.de"),
        ("Почта: иван@пример.рф", "email", "иван@пример.рф"),
        # card numbers with other (consistent) separators
        ("card 4111.1111.1111.1111 ok", "credit_card", "4111.1111.1111.1111"),
        ("card 4111  1111  1111  1111 ok", "credit_card", "4111  1111  1111  1111"),
        ("card 4111\t1111\t1111\t1111 ok", "credit_card", "4111\t1111\t1111\t1111"),
        ("card 4111/1111/1111/1111 ok", "credit_card", "4111/1111/1111/1111"),
        ("card 4111_1111_1111_1111 ok", "credit_card", "4111_1111_1111_1111"),
        ("amex 3782.822463.10005 ok", "credit_card", "3782.822463.10005"),
        ("Card no.4111.1111.1111.1111.", "credit_card", "4111.1111.1111.1111"),
        # US SSN with other separators; a bare one only after its keyword
        ("SSN 123 45 6789 on file", "ssn", "123 45 6789"),
        ("Tel. 030 12 3456", "phone", "030 12 3456"),
        ("ssn 123.45.6789 on file", "ssn", "123.45.6789"),
        ("ssn 123\u201345\u20136789 on file", "ssn", "123\u201345\u20136789"),
        ("SSN: 123456789", "ssn", "123456789"),
        ("social security number 123456789", "ssn", "123456789"),
        # national numbers without separators: a phone keyword, or a mobile number's shape
        ("call 5551234567", "phone", "5551234567"),
        ("Phone: 5551234567", "phone", "5551234567"),
        ("my number is 07911123456", "phone", "07911123456"),
        ("Handy 01711234567", "phone", "01711234567"),
        ("Mobile: 98765 43210", "phone", "98765 43210"),
        ("Tel. 030/12345678", "phone", "030/12345678"),
        ("電話09012345678", "phone", "09012345678"),
        # IPv6 forms that stay addresses
        ("host fe80::1 answers", "ip_address", "fe80::1"),
        ("host 2001:db8::1 answers", "ip_address", "2001:db8::1"),
        ("host [2001:db8::8a2e:370:7334]:443", "ip_address", "2001:db8::8a2e:370:7334"),
        # national numbers that must stay found
        ("Tel. 030 1234567", "phone", "030 1234567"),
        ("Tel. 0171 1234567", "phone", "0171 1234567"),
        ("Tel. 020 7946 0958", "phone", "020 7946 0958"),
        ("Tel. 044 123 45 67", "phone", "044 123 45 67"),
        ("Tel. 01 23 45 67 89", "phone", "01 23 45 67 89"),
        # North America's 1 before the number (the review: no longer found after the rewrite)
        ("Call 1-800-555-0199 today.", "phone", "1-800-555-0199"),
        ("Call 1.800.555.0199 today.", "phone", "1.800.555.0199"),
        ("Call us at 1-555-123-4567.", "phone", "1-555-123-4567"),
        ("Die Nummer ist 030 12 3456", "phone", "030 12 3456"),
    ],
)
def test_audit_cases_are_found(text: str, kind: str, value: str) -> None:
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == (kind, value)
    assert text[finding.start : finding.end] == value
    assert mask_pii(text) == text.replace(value, f"[{kind.upper()}]", 1)


@pytest.mark.parametrize(
    "text",
    [
        # '::' in code is no IPv6 address
        "class User < ActiveRecord::Base",
        "let m = HashMap::default();",
        "MyClass::Add()",
        "Face::deleteFace",
        "Face::Bead",
        "a::b",
        "10::30",
        "dead::beef",
        # a date and a time is no phone number
        "Termin am 03.04.2023 09:15 Uhr",
        "Released 01-02-2023 10:00",
        "01.05.24 10:00",
        "on 2024-01-15 10:30",
        # a date written with spaces
        "population 08 15 2000",
        # bare digit runs without a phone keyword: order ids, timestamps
        "Order 5551234567 shipped",
        "ts 1700000000123",
        "zip codes 90210 90211",
        "id 123456789",
        "ref 0123456789",
        # an IBAN whose check digits fail is not reported, whatever follows it
        "My IBAN is DE88 3704 0044 0532 0130 00 and my name is Max.",
        # an SSN-shaped group inside a longer run of groups
        "ids 1 123 45 6789 9",
        "ids 123-45-6789-12",
        # three groups apart by spaces or dots are an SSN only after its keyword
        "Weights: 120 45 2000 grams.",
        "Version 123.45.6789 of the firmware.",
        "Package dimensions 300.25.1000 mm.",
        "Numbers in the table: 512 34 5678 and 613 22 1234.",
    ],
)
def test_audit_false_positives_are_not_found(text: str) -> None:
    assert find_pii(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "1" * 100_000,
        "1 " * 50_000,
        "12 " * 33_000,
        "1234 " * 20_000,
        "0" * 100_000,
        "+" + "1" * 100_000,
        "1." * 50_000,
        "1-" * 50_000,
        "a1:" * 33_000,
        ":" * 100_000,
        "DE89 " * 20_000,
        "é" * 100_000 + "@",
        "电话" + "1" * 100_000,
        "ssn " + "123 " * 25_000,
    ],
)
# A hang bound, not a speed measurement: quadratic work on 100k characters takes minutes, so a
# backtracking pattern fails here by the timeout; linear scans finish in well under a second.
@pytest.mark.timeout(60)
def test_long_runs_take_linear_time(text: str) -> None:
    findings = find_pii(text)
    assert all(0 <= f.start < f.end <= len(text) for f in findings)


@pytest.mark.parametrize("hidden", ["\u034f", "\ufe0f", "\u3164", "\U000e0100"])
def test_invisible_characters_outside_cf_hide_nothing(hidden: str) -> None:
    """Default-ignorable characters that are no format character (the combining grapheme
    joiner, variation selectors, the Hangul filler) are dropped as zero-width spaces are."""
    text = f"Call me: 0791{hidden}1123456"
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == ("phone", f"0791{hidden}1123456")
    assert mask_pii(text) == "Call me: [PHONE]"


@pytest.mark.parametrize(
    ("text", "value"),
    [  # the audit's pii_native_keywords.jsonl
        ("Мой телефон: 9161234567, звоните вечером.", "9161234567"),
        ("Тел.: 89161234567", "89161234567"),
        ("للتواصل هاتف: 0501234567", "0501234567"),
        ("جوال: 0501234567", "0501234567"),
        ("טלפון: 0501234567", "0501234567"),
        ("โทร 0812345678 ได้ตลอด", "0812345678"),
        ("मेरा फ़ोन: 9876543210", "9876543210"),
        ("मेरा फ\u093cोन: 9876543210", "9876543210"),
        ("شماره تلفن: 09121234567", "09121234567"),
        ("Τηλ.: 6912345678", "6912345678"),
        ("联系方式：13812345678", "13812345678"),
    ],
)
def test_phone_keywords_of_other_languages(text: str, value: str) -> None:
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == ("phone", value)


@pytest.mark.parametrize("text", ["Отель: 9161234567", "Metel 9161234567"])
def test_a_keyword_inside_a_longer_word_is_none(text: str) -> None:
    assert find_pii(text) == []


def _in_digits(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in the script whose zero is ``zero``."""
    return "".join(chr(zero + int(c)) if c.isascii() and c.isdigit() else c for c in text)


@pytest.mark.parametrize("zero", [0x660, 0x6F0, 0x966, 0xE50])  # Arabic-Indic, Persian, ...
@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [  # the audit's pii_digit_scripts.jsonl
        ("رقمي 07911123456 شكرا", "phone", "07911123456"),
        ("رقمي 030 1234567 شكرا", "phone", "030 1234567"),
        ("رقمي 09012345678", "phone", "09012345678"),
        ("جوال: 0501234567", "phone", "0501234567"),
        ("IP: 192.168.10.20", "ip_address", "192.168.10.20"),
        ("IBAN: DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
        ("IBAN SA03 8000 0000 6080 1016 7519", "iban", "SA03 8000 0000 6080 1016 7519"),
        ("card 4111 1111 1111 1111", "credit_card", "4111 1111 1111 1111"),
    ],
)
def test_digits_of_other_scripts(text: str, kind: str, value: str, zero: int) -> None:
    text, value = _in_digits(text, zero), _in_digits(value, zero)
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == (kind, value)
    assert mask_pii(text) == text.replace(value, f"[{kind.upper()}]")


@pytest.mark.parametrize("text", ["+86 138 1234 5678", "Contact: +86 138 1234 5678 (WeChat)"])
def test_a_number_after_plus_is_a_phone_not_a_card(text: str) -> None:
    """Its digits pass Luhn; a card number is never written after "+"."""
    (finding,) = find_pii(text)
    assert (finding.kind, finding.value) == ("phone", "+86 138 1234 5678")
