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
