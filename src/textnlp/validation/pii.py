"""Personal data in text: e-mail, phone, credit card (Luhn), IBAN (mod 97), IPv4/IPv6, US SSN.

Every finding carries its character span in the original text; ``mask_pii`` returns a copy with
each finding replaced by ``[KIND]``. Detectors run from the most to the least specific (a card
number is not also reported as a phone number); overlapping matches keep the first.

What hides data from a pattern is undone first: the detectors read a folded view of the text
(``_Folded``: NFKC per character, so full-width digits are digits; format characters such as
zero-width spaces dropped; every kind of space a space), and spans are mapped back. A match
whose check fails (a card number with its expiry date run on) is tried again shorter, ending
at one of its last separators, and (for the checksummed kinds) from a few characters later
(leading tokens); every pattern but the e-mail's is bounded in length and the e-mail's cannot
start inside a run of its own characters, so a text costs time in proportion to its length.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict

from textnlp.validation.inputs import checked_text

PIIKind = Literal["email", "credit_card", "iban", "ssn", "ip_address", "phone"]

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4}(?![\w])"
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
#: Day, month and year (01.05.2024, 09-12-2023, 2024-05-01): a date, not a trunk-0 number.
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2}(?:\d{2})?|\d{4}([./-])\d{1,2}\2\d{1,2}")


def _phone_ok(value: str) -> bool:
    # Plain digit groups ("100 200 300", dates) are too often not phones: ask for an
    # international prefix, an area code in brackets, the North-American shape or a trunk 0.
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15 or _DATE.fullmatch(value):
        return False
    return (
        value[0] in "+("
        or re.match(r"0[1-9]", value) is not None
        or _NANP.fullmatch(value) is not None
    )


#: (kind, pattern, check, restarts): a failed match is searched again from inside it only
#: where a checksum guards the kind (a phone number inside a bad IBAN is no finding).
_DETECTORS: list[tuple[PIIKind, re.Pattern[str], Callable[[str], bool], int]] = [
    ("email", _EMAIL, lambda v: True, 0),
    ("iban", _IBAN, iban_valid, 2),
    ("credit_card", _CARD, _card_ok, 2),
    ("ssn", _SSN, lambda v: True, 0),
    ("ip_address", _IPV4, lambda v: True, 0),
    ("ip_address", _IPV6, _ipv6_ok, 0),
    ("phone", _PHONE, _phone_ok, 0),
]

#: Where a shorter match may end: before a separator inside a longer one.
_SEPARATOR = re.compile(r"[ .\-/]")


class _Folded:
    """``text`` as the detectors read it, with each folded character's original index."""

    def __init__(self, text: str) -> None:
        if text.isascii():  # nothing to fold: the common case, at no cost
            self.text, self._origin = text, None
            return
        parts: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text):
            category = unicodedata.category(char)
            if category == "Cf":  # zero-width and other format characters hide nothing
                continue
            folded = " " if category == "Zs" else unicodedata.normalize("NFKC", char)
            parts.append(folded)
            origin.extend([index] * len(folded))
        self.text = "".join(parts)
        self._origin = origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the folded ``[start, end)``."""
        if self._origin is None:
            return start, end
        return self._origin[start], self._origin[end - 1] + 1


#: A failed match is tried again ending before each of its last ``_CUTS`` separators (a
#: trailing "EUR", an expiry date, a count): bounded work per match.
_CUTS = 2


def _matches(
    pattern: re.Pattern[str], check: Callable[[str], bool], text: str, restarts_allowed: int
) -> Iterator[tuple[int, int]]:
    """Spans of ``pattern`` in ``text`` that pass ``check``, trying a failed match shorter,
    then from inside it (leading tokens) at most ``restarts_allowed`` times."""
    position = 0
    failed_until, restarts = 0, 0  # the span of the last failed match, and restarts in it
    while (match := pattern.search(text, position)) is not None:
        start, end = match.span()
        if check(match.group()):
            yield start, end
            position = end
            continue
        cuts = [m.start() for m in _SEPARATOR.finditer(text, start + 1, end)]
        for cut in reversed(cuts[-_CUTS:]):
            shorter = pattern.fullmatch(text, start, cut)
            if shorter is not None and check(shorter.group()):
                yield start, cut
                position = cut
                break
        else:
            if start >= failed_until:
                failed_until, restarts = end, 0
            restarts += 1
            position = start + 1 if restarts <= restarts_allowed else max(failed_until, start + 1)


class _Taken:
    """Disjoint spans, sorted: whether a new one overlaps any in O(log n).

    One detector's spans come in order and never overlap each other (``_matches``), so they
    are kept apart and merged in once the detector is done (``settle``): inserting each in
    place moved the list's tail, which made text dense with findings superlinear."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self._new: list[tuple[int, int]] = []  # this detector's, in order

    def overlaps(self, start: int, end: int) -> bool:
        if self._new and self._new[-1][1] > start:
            return True
        i = bisect.bisect_right(self.starts, start)
        return (i > 0 and self.ends[i - 1] > start) or (
            i < len(self.starts) and self.starts[i] < end
        )

    def add(self, start: int, end: int) -> None:
        self._new.append((start, end))

    def settle(self) -> None:
        spans = list(heapq.merge(zip(self.starts, self.ends, strict=True), self._new))
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]
        self._new = []


def find_pii(text: str) -> list[PIIFinding]:
    """All PII findings in ``text``, sorted by position, without overlaps."""
    checked_text(text, "text")
    folded = _Folded(text)
    found: list[PIIFinding] = []
    taken = _Taken()
    for kind, pattern, check, restarts in _DETECTORS:
        for start, end in _matches(pattern, check, folded.text, restarts):
            if taken.overlaps(start, end):
                continue
            taken.add(start, end)
            first, last = folded.span(start, end)
            found.append(PIIFinding(kind=kind, start=first, end=last, value=text[first:last]))
        taken.settle()
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
