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
