"""The person sampler's made-up people: Faker, per locale, seeded per cell.

Apart from the samplers because Faker needs care of its own: it is slow to build, so one
instance per locale is cached and shared; it is reseeded for each cell, so each is used under
a lock; and some locales write the family name first, which its name formats reveal.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker import Faker

PERSON_FIELDS = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "age",
        "gender",
        "locale",
        "occupation",
        "city",
        "country",
        "email",
    }
)


class _Fakers:
    """One Faker per locale, made on first use (it is slow to build) and used under a lock.

    A Faker is reseeded for each cell, so two threads must not interleave on one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_locale: dict[str, tuple[Faker, threading.Lock, str | None]] = {}

    def get(self, locale: str) -> tuple[Faker, threading.Lock, str | None]:
        with self._lock:
            if locale not in self._by_locale:
                from faker import Faker

                fake = Faker(locale)
                self._by_locale[locale] = (fake, threading.Lock(), _family_first(fake))
            return self._by_locale[locale]


_FAKERS = _Fakers()

_FAMILY_FIRST = re.compile(r"\{\{last_name\}\}( ?)\{\{first_name(?:_female|_male)?\}\}")


def _family_first(fake: Faker) -> str | None:
    """The separator of locales writing the family name first (``"山田 太郎"``), else ``None``."""
    provider = fake.provider("faker.providers.person")
    formats = getattr(provider, "formats", ()) or ()
    for pattern in formats:
        match = _FAMILY_FIRST.fullmatch(str(pattern))
        if match:
            return match.group(1)
    return None


def _available_locales() -> list[str]:
    from faker.config import AVAILABLE_LOCALES

    return list(AVAILABLE_LOCALES)


def known_locale(locale: str) -> str:
    """``locale`` in Faker's spelling (``en-GB`` is ``en_GB``); ``ValueError`` if Faker has none."""
    locale = locale.replace("-", "_")
    available = _available_locales()
    if locale not in available:
        raise ValueError(
            f"unknown locale {locale!r} (e.g. en_US, en_GB, de_DE, fr_FR, es_ES, ja_JP; "
            f"{len(available)} in all)"
        )
    return locale


def make_person(locale: str, gender: str, age: int, *, seed: int) -> dict[str, Any]:
    """The person (``PERSON_FIELDS``) Faker makes for ``locale`` and ``gender`` from ``seed``."""
    fake, lock, family_first = _FAKERS.get(locale)
    with lock:
        fake.seed_instance(seed)
        first = fake.first_name_female() if gender == "female" else fake.first_name_male()
        last = fake.last_name()
        occupation = fake.job()
        city = fake.city()
        country = _country(fake)
        domain = fake.free_email_domain()
        fallback_user = fake.user_name()
    name = f"{last}{family_first}{first}" if family_first is not None else f"{first} {last}"
    return {
        "name": name,
        "first_name": first,
        "last_name": last,
        "age": age,
        "gender": gender,
        "locale": locale,
        "occupation": occupation,
        "city": city,
        "country": country,
        "email": f"{_email_user(first, last) or fallback_user}@{domain}",
    }


def _country(fake: Faker) -> str:
    """The locale's own country (in English); a random one for a language-only locale."""
    try:
        return str(fake.current_country())
    except (AttributeError, ValueError):
        return str(fake.country())


def _email_user(first: str, last: str) -> str:
    """``first.last`` in ASCII letters, digits and dots, or "" when the names have none."""
    from faker.decode import unidecode

    parts = [re.sub(r"[^a-z0-9]+", "", unidecode(part).lower()) for part in (first, last)]
    return ".".join(p for p in parts if p)


__all__ = ["PERSON_FIELDS", "known_locale", "make_person"]
