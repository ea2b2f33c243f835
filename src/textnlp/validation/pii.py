"""Personal data in text: e-mail, phone, credit card (Luhn), IBAN (mod 97), IPv4/IPv6, US SSN.

Every finding carries its character span in the original text; ``mask_pii`` returns a copy with
each finding replaced by ``[KIND]``. Detectors run from the most to the least specific (a card
number is not also reported as a phone number); overlapping matches keep the first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from textnlp.validation.inputs import checked_text

PIIKind = Literal["email", "credit_card", "iban", "ssn", "ip_address", "phone"]

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w])"
    r"|(?<![\w+])\+\d{7,15}(?!\w)"
)


class PIIFinding(BaseModel):
    """One piece of personal data: its kind, span ``[start, end)`` and the matched text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PIIKind
    start: int
    end: int
    value: str


def luhn_valid(number: str) -> bool:
    """Whether the digits of ``number`` pass the Luhn checksum (credit cards)."""
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616: first four characters moved to the end, letters as 10..35, mod 97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _card_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ipv6_ok(value: str) -> bool:
    if sum(c in "0123456789abcdefABCDEF" for c in value) < 2:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


_NANP = re.compile(r"\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}")


def _phone_ok(value: str) -> bool:
    # Plain digit groups ("100 200 300", dates) are too often not phones: ask for an
    # international prefix, an area code in brackets, the North-American shape or a trunk 0.
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15:
        return False
    return (
        value[0] in "+("
        or re.match(r"0[1-9]", value) is not None
        or _NANP.fullmatch(value) is not None
    )


_DETECTORS: list[tuple[PIIKind, re.Pattern[str], Callable[[str], bool]]] = [
    ("email", _EMAIL, lambda v: True),
    ("iban", _IBAN, iban_valid),
    ("credit_card", _CARD, _card_ok),
    ("ssn", _SSN, lambda v: True),
    ("ip_address", _IPV4, lambda v: True),
    ("ip_address", _IPV6, _ipv6_ok),
    ("phone", _PHONE, _phone_ok),
]


def find_pii(text: str) -> list[PIIFinding]:
    """All PII findings in ``text``, sorted by position, without overlaps."""
    checked_text(text, "text")
    found: list[PIIFinding] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern, check in _DETECTORS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken) or not check(match.group()):
                continue
            taken.append((start, end))
            found.append(PIIFinding(kind=kind, start=start, end=end, value=match.group()))
    return sorted(found, key=lambda f: f.start)


def mask_pii(text: str, findings: list[PIIFinding] | None = None) -> str:
    """A copy of ``text`` with every finding replaced by ``[KIND]`` (e.g. ``[EMAIL]``)."""
    checked_text(text, "text")
    findings = find_pii(text) if findings is None else findings
    parts: list[str] = []
    cursor = 0
    for finding in sorted(findings, key=lambda f: f.start):
        parts.append(text[cursor : finding.start])
        parts.append(f"[{finding.kind.upper()}]")
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)
