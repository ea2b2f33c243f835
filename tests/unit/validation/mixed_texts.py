"""Seeded texts for the equality tests of the fast paths (a fast path against the plain
definition kept in its test): mixed-language records and strings of random code points.

Deterministic: the same seed gives the same texts on every machine (``random.Random``).
"""

from __future__ import annotations

import random
import sys
import unicodedata

_EN = "the quick brown fox jumps over lazy dog product review battery price would recommend"
_ZH = "这个产品非常好电池寿命很长屏幕清晰价格合理送货快推荐给朋友质量"
_AR = "هذا المنتج رائع جدا البطارية تدوم طويلا الشاشة واضحة السعر مناسب التوصيل سريع"
_TH = "สินค้านี้ดีมากแบตเตอรี่ใช้งานได้นานหน้าจอชัดราคาเหมาะสมจัดส่งเร็ว"
_HI = "यह उत्पाद बहुत अच्छा है बैटरी लंबे समय तक चलती है भारत தமிழ் शांति"
_HE = "שָׁלוֹם עוֹלָם טֶלֶפוֹן"
_TR = "İSTANBUL ıspanak Istanbul istanbul"
_NFD = unicodedata.normalize("NFD", "Crème brûlée, café naïve façade")
#: What PII detection folds or must find: other scripts' digits, full-width digits, invisible
#: and format characters, odd spaces, ligatures, and findings themselves.
_PIECES = [
    "user@example.com",
    "+33 6 12 34 56 78",
    "٠٥٠١٢٣٤٥٦٧",
    "۰۹۱۲۳۴۵۶۷۸۹",
    "०९८७६५४३२१",
    "１２３４５６７",
    "4111\u200b1111\u00ad1111\u20601111",
    "DE89 3704 0044 0532 0130 00",
    "192.168.0.1",
    "2001:db8::1",
    "123-45-6789",
    "Tel:\u3000030\u00a01234567",
    "\ufb01\u00bd\u2153\u2800\ufeff\u034f\ufe0f",
    "\ufffd",
    "👨\u200d👩\u200d👧 👍🏽 ❤️",
    "\U0001d400\U0001d7ce\U0001d7d8",  # mathematical letters and digits: NFKC folds them
]


def mixed_texts(count: int, seed: int) -> list[str]:
    """``count`` records of a few sentences each in English, Chinese, Arabic, Thai, Hindi and
    Tamil, pointed Hebrew, Turkish, NFD Latin, with repeats and the pieces PII detection folds."""
    rng = random.Random(seed)
    scripts = [
        _EN.split(),
        list(_ZH),
        _AR.split(),
        list(_TH),
        _HI.split(),
        _HE.split(),
        _TR.split(),
        _NFD.split(),
    ]
    texts = ["", " \u200b ", "\ufffd"]
    while len(texts) < count:
        parts = []
        for _ in range(rng.randint(1, 5)):
            vocabulary = rng.choice(scripts)
            joiner = "" if vocabulary[0] in (_ZH[0], _TH[0]) else " "
            sentence = joiner.join(rng.choices(vocabulary, k=rng.randint(1, 25)))
            parts.append(sentence * rng.choice((1, 1, 1, 2)))  # a repeat now and then
            if rng.random() < 0.3:
                parts.append(rng.choice(_PIECES))
        texts.append(rng.choice((" ", ". ", "", "\n")).join(parts))
    return texts


def random_code_point_strings(count: int, seed: int, *, pool: list[str] | None = None) -> list[str]:
    """``count`` strings of 1 to 60 characters drawn from ``pool`` (default: every code point
    but the surrogates)."""
    rng = random.Random(seed)
    if pool is None:
        pool = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    return ["".join(rng.choices(pool, k=rng.randint(1, 60))) for _ in range(count)]
