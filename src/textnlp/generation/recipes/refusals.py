"""What small models write instead of the task: refusals, meta-text, unfilled placeholders.

The ``refusal`` filter's own patterns (Python ``re``, ours, not a user's) and the walk that
finds every string in a nested value. They are a word list that grows with each model tried,
apart from the filter rules so that tuning them touches nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: How deep the refusal filter looks into nested dicts and lists (a dialogue is two levels).
MAX_NESTING = 16

_APOS = "['’]"
_CANT = (
    rf"(?:can(?:not|{_APOS}t|\s+not)|could(?:n{_APOS}t|\s+not)"
    rf"|(?:am|{_APOS}m)\s+(?:not\s+able|unable)\s+to|(?:do\s+not|don{_APOS}t)\s+feel\s+comfortable)"
)
#: Objects of a refused task; "I can't help but love it", "I can't create an account" stay out.
_REFUSED = (
    r"(?:(?:help|assist)(?:\s+you)?(?:\s+with\s+(?:that|this|your\s+request|the\s+request|such"
    r"|creating|writing|generating)\b|\s+in\s+(?:this|that|creating|writing)\b|\s*[.,!]|\s*$)"
    r"|(?:fulfil+|complete)\s+(?:that|this|your|the|such)\s+(?:request|task)"
    r"|comply\s+with\s+(?:that|this|your|the|such)\s+request"
    r"|(?:write|create|generate|produce|compose)\s+(?:that|this|such|content|anything\s+(?:that|like)"
    r"|(?:a|an)\s+(?:[\w-]+\s+)?(?:review|response|story|text|essay|post|message|content))\b"
    r"|provide\s+(?:assistance|that|this|a\s+(?:response|review|answer)|personal\s+opinions)\b"
    r"|engage\s+in|participate\s+in|browse\s+the|access\s+(?:the\s+internet|real-time|external))"
)
_AI = r"(?:AI|artificial\s+intelligence|(?:large\s+)?language\s+model|LLM|chatbot)"

_REFUSAL_PATTERNS = [
    rf"\b(?:sorry|I\s+apologi[sz]e)\b[^.!?\n]{{0,30}}?\bI\s*{_CANT}\s+(?:\w+\s+)?"
    rf"(?:{_REFUSED}|do\s+(?:that|this)\b|(?:write|create|generate)\b)",
    rf"\bI\s*{_CANT}\s+(?:\w+\s+)?{_REFUSED}",
    rf"\bas\s+an?\s+{_AI}(?:\s+(?:assistant|model|system))?\s*,",
    r"\bas\s+an?\s+(?:AI\s+)?(?:large\s+)?language\s+model\b",
    # "as a text-based AI, I don't...", "as a chatbot designed to help ..., my primary function"
    # (the AI is what speaks: "as an AI researcher, I..." is a person and stays out)
    rf"\bas\s+an?\s+(?:[\w'’-]+\s+){{0,4}}?{_AI}(?:\s+(?:assistant|model|system|bot))?"
    r"(?=\s*,|\s+(?:designed|trained|built|created|developed|made|programmed)\b)"
    r"[^.!?\n]{0,60}?,\s*(?:I|my)\b",
    rf"\bI(?:{_APOS}m|\s+am)\s+(?:just\s+|only\s+|merely\s+|simply\s+)?an?\s+{_AI}"
    r"(?:\s+(?:assistant|model|system))?"
    r"(?=\s*(?:[,.;:!]|$|and\b|so\b|developed|created|trained|made|designed|built|by\b|that\b))",
    rf"\bI\s+(?:do\s+not|don{_APOS}t)\s+have\s+(?:personal\s+(?:opinions|feelings|preferences"
    r"|beliefs|emotions|views|experiences?\s+(?:or|and)\s+(?:opinions|feelings|emotions))"
    r"|(?:feelings|emotions)\s+(?:or|and)|the\s+ability\s+to\s+(?:browse|access|see|taste|smell"
    r"|feel|experience|physically|form|have|use\s+products))",
    rf"\bit(?:{_APOS}s|\s+is|\s+would(?:\s+not|n{_APOS}t)\s+be)\s+(?:not\s+)?"
    r"(?:appropriate|ethical|responsible|in\s*appropriate)\s+for\s+me\s+to\b",
    r"\bit\s+(?:is|would\s+be)\s+(?:not\s+appropriate|inappropriate)\s+(?:for\s+me\s+)?to\s+"
    r"(?:write|provide|create|generate|share|give)\b",
    r"\bI\s+(?:must|have\s+to|will\s+have\s+to)\s+(?:respectfully\s+|politely\s+)?decline\b",
    r"\b(?:against|violates?)\s+my\s+(?:programming|guidelines|policies|ethical\s+guidelines)\b",
    r"\bmy\s+(?:programming|guidelines)\s+(?:do(?:es)?\s+not|don't|doesn't)\s+allow\b",
]

#: What a model writes about a task instead of doing it ("Here's a review of...").
_TEXT_NOUN = (
    r"(?:review|response|reply|answer|summary|version|example|draft|story|text|description"
    r"|question|email|message|dialogue|conversation|post|tweet|rewrite|paraphrase|translation"
    r"|poem|article|essay|paragraph|testimonial|feedback|output|comment)s?"
)
_META_PATTERNS = [
    rf"(?:^|\n)[ \t\"*]*(?:here{_APOS}s|here\s+(?:is|are))\s+(?:a|an|the|your|some|one|two|three"
    rf"|\d+)\s+(?:[\w'’-]+\s+){{0,5}}?{_TEXT_NOUN}\b",
    rf"(?:^|\n)[ \t\"*]*below\s+(?:is|are)\s+(?:a|an|the|your|some)\s+(?:[\w'’-]+\s+){{0,5}}?"
    rf"{_TEXT_NOUN}\b",
    r"(?:^|\n)[ \t\"*]*(?:sure(?:\s+thing)?|of\s+course|absolutely|okay|ok|alright|certainly)"
    r"\s*[,!.]?\s*here\b",
    r"\bI(?:['’]d|\s+would|\s+can|['’]ll|\s+will)\s+(?:be\s+(?:happy|glad|delighted)\s+to\s+)?"
    r"(?:help\s+you\s+)?(?:write|create|craft|generate|draft|compose)\s+(?:a|an|the|your|some)\s+"
    rf"(?:[\w'’-]+\s+){{0,3}}?{_TEXT_NOUN}\b",
    r"\bas\s+(?:a|an|your)\s+(?:helpful|friendly|virtual|digital)\s+assistant\b",
    r"(?:^|\n)[ \t\"*]*certainly\s*!",
    rf"\bas\s+an?\s+{_AI}\s+(?:[\w-]+\s+){{0,4}}?(?:assistant|model|writer|bot|generator)\b",
    r"\bI\s+hope\s+(?:this|that|it)\s+(?:helps|meets|is\s+(?:helpful|what\s+you)|fits\s+your"
    r"|works\s+for\s+you|captures|gives\s+you)\b",
    rf"\bnote\s*:\s*(?:this|the)\s+{_TEXT_NOUN}\b",
    rf"\b(?:this|the\s+above|the\s+following)\s+{_TEXT_NOUN}\s+(?:is|was|has\s+been)\s+"
    r"(?:(?:written|generated|created|crafted|designed)\s+(?:by\s+an?\s+AI|as\s+an?|in\s+the\s+style"
    r"|based\s+on|for\s+you|according|to\s+(?:meet|match|reflect|fit))|purely\s+fictional|fictional)",
    rf"\bas\s+(?:you\s+)?requested\b[^.\n]{{0,40}}?\b(?:{_TEXT_NOUN}|here|below)\b",
    rf"\b{_TEXT_NOUN}[^.\n]{{0,30}}?,?\s+as\s+(?:you\s+)?requested\b",
    r"\bword\s+count\s*:\s*\d+",
    rf"\bI(?:{_APOS}ve|\s+have)\s+(?:written|generated|created|crafted|drafted)\s+(?:a|an|the|this"
    rf"|your)\s+(?:[\w'’-]+\s+){{0,3}}?{_TEXT_NOUN}\b",
    r"\blet\s+me\s+know\s+if\s+you\s+(?:need|want|would\s+like|'d\s+like)\s+(?:any\s+)?(?:changes"
    r"|modifications|adjustments|revisions|edits|a\s+different|another\s+version|me\s+to\s+"
    r"(?:adjust|change|modify|revise|rewrite))",
    r"\bfeel\s+free\s+to\s+(?:modify|adjust|customi[sz]e|edit|tweak)\b",
]

#: Slots a model left unfilled: "[Your Name]", "[Product Name]", "<Company Name>".
_SLOT = (
    r"(?:your|product|company|customer|brand|store|shop|recipient|insert|name|date|address"
    r"|e-?mail|phone|location|city|item|service|order|business|restaurant|hotel|author|title)"
)
_PLACEHOLDER_PATTERNS = [
    rf"\[\s*{_SLOT}\b[^\[\]\n]{{0,30}}\]",
    rf"<\s*{_SLOT}\s+[^<>\n]{{1,30}}>",
    r"\{\{?\s*(?:product|customer|company|user|your)_?\w{0,20}\s*\}?\}",
]


def _alternation(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.MULTILINE)


#: Our own patterns (not a user's): Python ``re``, bounded repetitions only.
_BUILTIN: dict[str, re.Pattern[str]] = {
    "refusal": _alternation(_REFUSAL_PATTERNS),
    "meta-text": _alternation(_META_PATTERNS),
    "placeholder": _alternation(_PLACEHOLDER_PATTERNS),
}


def builtin_match(kind: str, text: str) -> re.Match[str] | None:
    """The first match in ``text`` of the ``kind`` patterns (``refusal``, ``meta-text`` or
    ``placeholder``), or ``None``."""
    return _BUILTIN[kind].search(text)


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, text) of every string in a value: a text, a dialogue's turns, an object's fields."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            yield path, node
        elif depth < MAX_NESTING and isinstance(node, dict):
            items = [(v, f"{path}.{k}" if path else str(k), depth + 1) for k, v in node.items()]
            stack.extend(reversed(items))
        elif depth < MAX_NESTING and isinstance(node, list | tuple):
            items = [(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(node)]
            stack.extend(reversed(items))


__all__ = ["MAX_NESTING", "builtin_match", "strings"]
