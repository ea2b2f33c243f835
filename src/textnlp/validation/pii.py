"""Personal data in text: e-mail, phone, credit card (Luhn), IBAN (mod 97), IPv4/IPv6, US SSN.

Every finding carries its character span in the original text; ``mask_pii`` returns a copy with
each finding replaced by ``[KIND]``. Detectors run from the most to the least specific (a card
number is not also reported as a phone number); overlapping matches keep the first.

What hides data from a pattern is undone first: the detectors read a folded view of the text
(``pii_fold.Folded``: NFKC per character, so full-width digits are digits; the decimal digits
of every script (Arabic-Indic ``٠٥٠``, Persian ``۰۹۱``, Devanagari ``०९८``) as 0-9; what a
reader cannot see dropped (``text.invisible_characters``: zero-width spaces and other format
characters, the combining grapheme joiner, variation selectors, Hangul fillers); every kind of
space a space), and spans are mapped back. A match whose check fails (a card number with its
expiry date run on) is tried again shorter, ending at one of its last separators, and (for the
checksummed kinds) from a few characters later (leading tokens); every pattern but the
e-mail's is bounded in length and the e-mail's cannot start inside a run of its own
characters, so a text costs time in proportion to its length.

Boundaries are letters of alphabetic scripts (ASCII, Latin, Greek, Cyrillic) and digits, never
``\\w``: Chinese and Japanese are written without spaces, so ``请联系john@example.com获取`` and
``電話090-1234-5678まで`` hold an address and a number. For the same reason an e-mail address
may hold letters of those alphabetic scripts (RFC 6531: ``müller@bücher.de``) but no CJK.

Per kind:

* IBAN: two letters, two check digits, then exactly as many characters as the country's
  IBAN has (``_IBAN_LENGTHS``, the SWIFT registry), single spaces allowed between them; the
  mod-97 check decides. Words that follow do not matter; an unknown country is no IBAN.
* Card: 13 to 19 digits, not after ``+`` (``+86 138 1234 5678`` is a phone number),
  optionally split by single spaces or hyphens, or grouped 4-4-4-4(-3), 4-6-5 or 4-6-4 with
  one and the same separator (``.``, ``/``, ``_``, tab, 2-3 spaces); Luhn.
* SSN: ``ddd-dd-dddd`` with one and the same hyphen or dash, not inside a longer run of digit
  groups, within the SSA's rules (no area 000, 666 or 9xx, no group 00, no serial 0000);
  with spaces or dots (``120 45 2000`` grams, version ``123.45.6789``), or as nine bare
  digits, only right after "SSN" or "social security".
* IPv6: bounded by characters that are not letters, digits, ``_`` or ``:`` (``ActiveRecord::Base``
  and ``HashMap::default`` hold none), valid for ``ipaddress``, and, when shortened with ``::``,
  with a digit, one letter case, and three groups or a full four-digit one (``fe80::1``,
  ``2001:db8::1``; not ``a::b``, ``10::30``, ``dead::beef``, ``Face::Bead``).
* Phone: 7 to 15 digits, not a date (``01.05.2024``, ``08 15 2000``) and not followed by a time
  (``03.04.2023 09:15`` is a date and a time). A grouped number is one when it has an
  international prefix (``+33 6 12 34 56 78``), a bracketed area code (``(030) 1234567``), the
  North-American shape (``1-800-555-0199`` with its 1 too), or a trunk 0 (``030 1234567``;
  ``030/12345678``, the only shape where ``/`` separates). A run of digits without separators is
  too often an order id or a timestamp: it is a phone number only after ``+``, in a common
  mobile shape with its trunk 0 (``_MOBILE``: UK 07…, 11 digits; DE 015-017…, 11-12; FR/NL
  06/07…, 10; AU 04…, 10; JP 070/080/090…, 11) or after a phone keyword (``_PHONE_KEYWORD``:
  Tel, phone, call, mobile, Handy, Телефон, هاتف, טלפון, โทร, फ़ोन, Τηλ, تلفن, 電話, 联系方式, …
  within a few characters, no digit between); so is a number in two groups that fits no shape
  above (``Mobile: 98765 43210``). ``5551234567`` alone is not reported.
"""

from __future__ import annotations

import bisect
import heapq
import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict

from textnlp.validation.inputs import checked_text
from textnlp.validation.pii_fold import Folded

PIIKind = Literal["email", "credit_card", "iban", "ssn", "ip_address", "phone"]

#: Letters of alphabetic scripts beyond ASCII (Latin-1 and Latin Extended, combining marks,
#: Greek, Cyrillic); CJK, kana and Hangul are not among them: they bound a finding.
_LETTERS = "\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0300-\u036f\u0370-\u03ff\u0400-\u04ff"
#: What a finding may not be glued to: letters, digits and ``_``.
_WORD = "A-Za-z0-9_" + _LETTERS

_EMAIL_LOCAL = "A-Za-z0-9._%+\\-" + _LETTERS
_EMAIL_LABEL = "A-Za-z0-9\\-" + _LETTERS
_EMAIL = re.compile(
    rf"(?<![{_EMAIL_LOCAL}])[{_EMAIL_LOCAL}]+@[{_EMAIL_LABEL}]+(?:\.[{_EMAIL_LABEL}]+)*"
    rf"\.[A-Za-z{_LETTERS}]{{2,}}"
)
_CARD = re.compile(
    r"(?<![\d+-])\d(?:"  # not after "+": +86 138 1234 5678 is a phone number
    r"(?:[ -]?\d){12,18}(?![\d-])"  # 4111 1111 1111 1111, 4111-1111-..., 4111111111111111
    r"|(?<!\d[./_]\d)\d{3}(?P<sep>[./_\t]| {2,3})"  # 4111.1111.1111.1111, 3782/822463/10005
    r"(?:\d{4}(?P=sep)\d{4}(?P=sep)\d{1,4}(?:(?P=sep)\d{3})?|\d{6}(?P=sep)\d{4,5})"
    r"(?!\d|(?P=sep)\d))"
)
_DASHES = "\\-\u2010-\u2015\u2212"
_SSN = re.compile(
    rf"(?<![\d{_DASHES}])(?!000|666|9\d\d)\d{{3}}(?:"
    # 123-45-6789, 123 45 6789, 123.45.6789, 123–45–6789; not inside a run of groups
    rf"(?<!\d[ .{_DASHES}]\d{{3}})(?P<sep>[ .{_DASHES}])(?!00)\d{{2}}(?P=sep)(?!0000)\d{{4}}"
    rf"(?!\d|[ .{_DASHES}]\d)"
    r"|(?!00)\d{2}(?!0000)\d{4}(?![\d-]))"  # 123456789: only after its keyword (_ssn_ok)
)
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_IPV6 = re.compile(
    rf"(?<![{_WORD}:])(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}[0-9A-Fa-f]{{0,4}}(?![{_WORD}:])"
)
_PHONE = re.compile(
    rf"(?<![{_WORD}+])(?<!\d[:./-])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,8}){1,4}"  # +33 6 12 34 56 78
    r"|1[ .-]\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}"  # 1-800-555-0199: North America's 1 first
    r"|\(\d{1,4}\)[ .-]?\d{2,8}(?:[ .-]\d{2,8}){0,4}"  # (030) 1234567, (415) 555-0132
    r"|\d{2,5}[ ./-]\d{2,8}(?:[ .-]\d{2,8}){0,3}"  # 030 1234567, 030/12345678
    r"|\+?\d{7,15}"  # one run
    rf")(?![{_WORD}]|:\d)"
)

#: IBAN length per country (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
#: Where an IBAN may start: its country and check digits, not glued to a letter or digit.
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?= ?[A-Za-z0-9])")
#: The rest of an IBAN of each length: that many characters, single spaces between them.
_IBAN_REST = {
    length: re.compile(rf"(?: ?[A-Za-z0-9]){{{length - 4}}}(?![A-Za-z0-9])")
    for length in set(_IBAN_LENGTHS.values())
}


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
    """ISO 13616: the country's length; first four characters moved to the end, letters as
    10..35, mod 97 == 1."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


#: A check: whether ``text[start:end]`` is a finding (the text around it may tell).
_Check = Callable[[str, int, int], bool]


def _any(text: str, start: int, end: int) -> bool:
    return True


def _card_ok(text: str, start: int, end: int) -> bool:
    digits = re.sub(r"\D", "", text[start:end])
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


#: A phone keyword shortly before a number, no digit between. Keywords in alphabetic scripts
#: may not end a longer word; Arabic and Hebrew ones may (their articles and prepositions are
#: written joined: الهاتف, בטלפון), and so may those of scripts written without spaces.
_PHONE_KEYWORD = re.compile(
    rf"(?i)(?:(?<![a-z{_LETTERS}])(?:tel|phone|call|mobile?|cell|handy|fax|whatsapp|"
    r"t[ée]l[ée]phone|telefon[oa]?|telp|telepon|điện thoại|"
    r"тел|моб|τηλ|κινητ)"  # Cyrillic тел(ефон), моб(ильный); Greek τηλ(έφωνο), κινητό
    r"|هاتف|جوال|موبايل|تلفن|موبایل"  # Arabic, Persian
    r"|טלפון|טל'|טל׳|נייד"  # Hebrew
    r"|โทร|มือถือ"  # Thai: โทร(ศัพท์), มือถือ (mobile)
    r"|फ\u093cोन|फोन|मोबाइल|दूरभाष"  # Hindi, फ़ोन as NFKC writes it
    r"|電話|电话|手机|手機|携帯|ケータイ|联系方式|聯繫方式|聯絡方式|연락처|전화|핸드폰|휴대폰"
    r")[^\d\n]{0,20}$"
)

#: "SSN" or "social security (number)" right before nine bare digits.
_SSN_KEYWORD = re.compile(r"(?i)(?<![a-z])(?:ssn|social\s+security)[^\d\n]{0,20}$")


def _ssn_ok(text: str, start: int, end: int) -> bool:
    """123-45-6789 (dashes) anywhere; nine bare digits, or groups apart by spaces or dots
    (weights "120 45 2000", a version "123.45.6789"), only after "SSN"/"social security"."""
    value = text[start:end]
    if value.isdigit() or value[3] in " .":
        return _SSN_KEYWORD.search(text, max(0, start - 40), start) is not None
    return True


def _ipv6_ok(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    if sum(c in "0123456789abcdefABCDEF" for c in value) < 2:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    if "::" not in value:
        return True
    # Shortened: code such as a::b, 10::30, dead::beef or Face::Bead is none.
    groups = [group for group in value.split(":") if group]
    return (
        any(c.isdigit() for c in value)
        and not (any(c.islower() for c in value) and any(c.isupper() for c in value))
        and (len(groups) >= 3 or any(len(group) == 4 for group in groups))
    )


_NANP = re.compile(r"\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}")
_NANP_WITH_1 = re.compile(r"1[ .-]\(?\d{3}\)?[ .-]?\d{3}[ .-]\d{4}")
#: Day, month and year (01.05.2024, 09-12-2023, 2024-05-01): a date, not a trunk-0 number;
#: with spaces only a valid month and day and a year of 19xx or 20xx (08 15 2000, 15 08 2000).
_DATE = re.compile(
    r"\d{1,2}([./-])\d{1,2}\1\d{2}(?:\d{2})?|\d{4}([./-])\d{1,2}\2\d{1,2}"
    r"|(?:0?[1-9]|1[0-2]) (?:0?[1-9]|[12]\d|3[01]) (?:19|20)\d\d"
    r"|(?:0?[1-9]|[12]\d|3[01]) (?:0?[1-9]|1[0-2]) (?:19|20)\d\d"
)
#: Mobile numbers written as one run with their trunk 0: UK 07, DE 015-017, FR/NL 06/07,
#: AU 04, JP 070/080/090.
_MOBILE = re.compile(r"07[1-9]\d{8}|01[5-7]\d{8,9}|0[67]\d{8}|04\d{8}|0[789]0\d{8}")


def _phone_ok(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    digits = sum(c.isdigit() for c in value)
    if not 7 <= digits <= 15 or _DATE.fullmatch(value):
        return False
    if "/" in value:  # only in 030/12345678: a trunk-0 area code, then the number
        return re.fullmatch(r"0[1-9]\d{0,3}/\d{3,8}", value) is not None
    if value[0] == "+" or _NANP_WITH_1.fullmatch(value):
        return True
    groups = len(re.findall(r"\d+", value))
    if groups == 1 and _MOBILE.fullmatch(value):
        return True
    # Plain digit groups ("100 200 300", dates) are too often not phones: ask for an area
    # code in brackets, the North-American shape or a trunk 0, or else a phone keyword.
    if groups > 1 and (
        value[0] == "(" or _NANP.fullmatch(value) or re.match(r"0[1-9]", value) is not None
    ):
        return True
    return groups <= 2 and _PHONE_KEYWORD.search(text, max(0, start - 40), start) is not None


def _regex_spans(
    pattern: re.Pattern[str], check: _Check, restarts_allowed: int
) -> Callable[[str], Iterator[tuple[int, int]]]:
    return lambda text: _matches(pattern, check, text, restarts_allowed)


def _iban_spans(text: str) -> Iterator[tuple[int, int]]:
    """IBANs: after a country and check digits, exactly that country's length (the words
    after an IBAN are no part of it), then the mod-97 check."""
    position = 0
    while (match := _IBAN_START.search(text, position)) is not None:
        position = match.end()
        length = _IBAN_LENGTHS.get(match.group()[:2].upper())
        if length is None:
            continue
        rest = _IBAN_REST[length].match(text, match.end())
        if rest is not None and iban_valid(text[match.start() : rest.end()]):
            yield match.start(), rest.end()
            position = rest.end()


#: (kind, spans): each detector yields its findings' spans in order; a failed match is
#: searched again from inside it only where a checksum guards the kind (a phone number
#: inside a bad IBAN is no finding).
_DETECTORS: list[tuple[PIIKind, Callable[[str], Iterator[tuple[int, int]]]]] = [
    ("email", _regex_spans(_EMAIL, _any, 0)),
    ("iban", _iban_spans),
    ("credit_card", _regex_spans(_CARD, _card_ok, 2)),
    ("ssn", _regex_spans(_SSN, _ssn_ok, 0)),
    ("ip_address", _regex_spans(_IPV4, _any, 0)),
    ("ip_address", _regex_spans(_IPV6, _ipv6_ok, 0)),
    ("phone", _regex_spans(_PHONE, _phone_ok, 0)),
]

#: Where a shorter match may end: before a separator inside a longer one.
_SEPARATOR = re.compile(r"[ .\-/]")


#: A failed match is tried again ending before each of its last ``_CUTS`` separators (a
#: trailing "EUR", an expiry date, a count): bounded work per match.
_CUTS = 2


def _matches(
    pattern: re.Pattern[str], check: _Check, text: str, restarts_allowed: int
) -> Iterator[tuple[int, int]]:
    """Spans of ``pattern`` in ``text`` that pass ``check``, trying a failed match shorter,
    then from inside it (leading tokens) at most ``restarts_allowed`` times."""
    position = 0
    failed_until, restarts = 0, 0  # the span of the last failed match, and restarts in it
    while (match := pattern.search(text, position)) is not None:
        start, end = match.span()
        if check(text, start, end):
            yield start, end
            position = end
            continue
        cuts = [m.start() for m in _SEPARATOR.finditer(text, start + 1, end)]
        for cut in reversed(cuts[-_CUTS:]):
            shorter = pattern.fullmatch(text, start, cut)
            if shorter is not None and check(text, start, cut):
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
        if not self._new:  # most detectors find nothing in most texts: nothing to merge
            return
        spans = list(heapq.merge(zip(self.starts, self.ends, strict=True), self._new))
        self.starts = [start for start, _ in spans]
        self.ends = [end for _, end in spans]
        self._new = []


def find_pii(text: str) -> list[PIIFinding]:
    """All PII findings in ``text``, sorted by position, without overlaps."""
    checked_text(text, "text")
    folded = Folded(text)
    found: list[PIIFinding] = []
    taken = _Taken()
    for kind, spans in _DETECTORS:
        for start, end in spans(folded.text):
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
