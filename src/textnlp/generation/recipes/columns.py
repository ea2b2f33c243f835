"""Expression and llm columns: what a column computes from the columns before it.

Samplers (``samplers.py``) and filters (``filters.py``) are the other kinds. Every column says
which columns it reads (``references``), so the recipe can be checked as a DAG before any
model runs, and llm columns say how to build their requests; running them is ``cells.py``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import jinja2
from jinja2 import meta, nodes
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textnlp.domain import ChatMessage, GenerationParams, GenerationRequest
from textnlp.errors import InvalidParameter
from textnlp.generation.jinja_sandbox import JINJA, check_templates, jinja_template
from textnlp.generation.json_grammar import schema_grammar
from textnlp.generation.scalars import natural
from textnlp.strict_json import extract_json_object
from textnlp.validation.safe_schema import compiled, instance_problem


def template_names(*texts: str | None) -> dict[str, set[str]]:
    """The columns Jinja2 ``texts`` read, each with the attributes read of it
    (``{{ person.name }}`` -> ``{"person": {"name"}}``). Syntax errors raise ``ValueError``."""
    names: dict[str, set[str]] = {}
    for text in texts:
        if not text:
            continue
        try:
            tree = JINJA.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(f"line {exc.lineno}: {exc.message}") from None
        for name in meta.find_undeclared_variables(tree):
            names.setdefault(name, set())
        for node in tree.find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name in names:
                names[node.node.name].add(node.attr)
    return names


class RenderFailed(ValueError):
    """A prompt that cannot be rendered over a row's values (``{{ a / 2 }}`` over a text, a
    division by a zero it sampled, an attribute the sandbox refuses): that candidate fails."""


def render(text: str, row: Mapping[str, Any]) -> str:
    """``text`` rendered over the row (an undefined name raises ``jinja2.UndefinedError``,
    any other failure ``RenderFailed``)."""
    try:
        return jinja_template(text).render(row).strip()
    except jinja2.UndefinedError:
        raise
    except (jinja2.TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise RenderFailed(str(exc)) from None  # as an expression column's failures say it


def as_text(value: Any) -> str:
    """A cell's value as the text a prompt or a record's ``text`` shows."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        return "\n".join(f"{m.get('role', '')}: {m['content']}" for m in value)
    return json.dumps(value, ensure_ascii=False)


class _Column(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: str = ""
    #: Whether the column's value goes into a record's ``data`` (llm) or ``variables``.
    generated: ClassVar[bool] = False

    def texts(self) -> list[str | None]:
        """The Jinja2 templates of the column (its references come from them)."""
        return []

    def reads(self) -> dict[str, set[str]]:
        return template_names(*self.texts())

    def references(self) -> set[str]:
        return set(self.reads())


class Expression(_Column):
    """Jinja2 over earlier columns: ``"{{ 'positive' if rating >= 4 else 'negative' }}"``."""

    type: Literal["expression"] = "expression"
    expr: str

    @field_validator("expr")
    @classmethod
    def _compiles(cls, expr: str) -> str:
        check_templates(expr)
        return expr

    def texts(self) -> list[str | None]:
        return [self.expr]

    def evaluate(self, row: Mapping[str, Any]) -> Any:
        return natural(render(self.expr, row))


class _LlmColumn(_Column):
    """A prompt over earlier columns, sent to its own model with its own parameters."""

    generated: ClassVar[bool] = True

    prompt: str
    system: str | None = None
    #: The catalogue model (None: the recipe's, else the run's).
    model: str | None = None
    params: dict[str, Any] = {}
    #: Extra attempts when the output does not parse (structured and judge columns).
    retries: int = Field(2, ge=0, le=10)
    #: Send ``prompt`` as is, without the chat template, its control tokens read as such: a
    #: Magpie pre-query (the model's own user-turn opening) makes the model write a user turn.
    raw: bool = False

    @model_validator(mode="after")
    def _prompts_compile(self) -> _LlmColumn:
        check_templates(*self.texts())
        return self

    def texts(self) -> list[str | None]:
        return [self.system, self.prompt]

    def request(self, row: Mapping[str, Any], params: GenerationParams) -> GenerationRequest:
        grammar = self.grammar()
        if self.raw:
            prompt = jinja_template(self.prompt).render(row)  # not stripped: "user\n" ends it
            return GenerationRequest(
                prompt=prompt, params=params, control_tokens=True, keep_prompt=True, grammar=grammar
            )
        return GenerationRequest(
            messages=self.messages(row), params=params, keep_prompt=True, grammar=grammar
        )

    def grammar(self) -> str | None:
        """The output's shape for backends that decode under a grammar (None: free text)."""
        return None

    def messages(self, row: Mapping[str, Any]) -> tuple[ChatMessage, ...]:
        system = render(self.system, row) if self.system else None
        user = render(self.prompt, row) + self.instructions()
        head = (ChatMessage(role="system", content=system),) if system else ()
        return (*head, ChatMessage(role="user", content=user))

    def instructions(self) -> str:
        """What is appended to the prompt to ask for the column's output format."""
        return ""

    def parse(self, text: str) -> Any:
        """The cell's value from the model's text; ``ValueError`` asks for another attempt."""
        return text.strip()


class LlmText(_LlmColumn):
    type: Literal["llm-text"] = "llm-text"
    retries: int = Field(0, ge=0, le=10)

    def parse(self, text: str) -> Any:
        value = text.strip()
        if not value:
            raise ValueError("empty output")
        return value


class LlmStructured(_LlmColumn):
    """A JSON object checked against ``schema`` (a JSON Schema, or a pydantic model's in
    Python); an output that does not parse or breaks the schema is retried."""

    type: Literal["llm-structured"] = "llm-structured"
    json_schema: dict[str, Any] = Field(alias="schema")

    @field_validator("json_schema", mode="before")
    @classmethod
    def _pydantic_model(cls, value: Any) -> Any:
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value.model_json_schema()
        return value

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            compiled(value)
        except InvalidParameter as exc:  # as a ValueError, the recipe's error names the column
            raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value

    def grammar(self) -> str | None:
        return schema_grammar(self.json_schema)

    def instructions(self) -> str:
        schema = json.dumps(self.json_schema, ensure_ascii=False)
        return f"\n\nAnswer with only a JSON object that matches this JSON Schema:\n{schema}"

    def parse(self, text: str) -> Any:
        data = extract_json_object(text)
        problem = instance_problem(data)
        if problem is not None:
            raise ValueError(problem)
        error = compiled(self.json_schema).first_error(data)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "object"
            raise ValueError(f"schema violation at {where}: {error.message}")
        return data


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    #: Score -> what it means, e.g. {1: "useless", 5: "perfect"}; at least two.
    scores: dict[int, str]

    @field_validator("scores")
    @classmethod
    def _has_scores(cls, scores: dict[int, str]) -> dict[int, str]:
        if len(scores) < 2:
            raise ValueError("a rubric criterion needs at least two scores")
        return scores


class LlmJudge(_LlmColumn):
    """Scores per criterion with a reason: ``{criterion: {"score": 4, "reason": "..."}}``.

    One request per criterion (they run together) with an example answer, the answer begun
    for the model (``"Score:"``, a prefill): small models rarely write a requested format,
    but they continue one. The first whole number of the answer is the score; a number
    outside the rubric, or none, asks for another attempt."""

    type: Literal["llm-judge"] = "llm-judge"
    rubric: dict[str, Criterion]
    params: dict[str, Any] = {"temperature": 0.5, "max_tokens": 48}
    retries: int = Field(3, ge=0, le=10)

    @field_validator("rubric")
    @classmethod
    def _not_empty(cls, rubric: dict[str, Criterion]) -> dict[str, Criterion]:
        if not rubric:
            raise ValueError("a judge needs a rubric with at least one criterion")
        return rubric

    def criterion_messages(
        self, name: str, row: Mapping[str, Any], *, constrained: bool = False
    ) -> tuple[ChatMessage, ...]:
        """The request for one criterion; ``constrained``: decoded under
        ``criterion_grammar``, which gives the answer its shape, so no examples are shown."""
        criterion = self.rubric[name]
        low, high = min(criterion.scores), max(criterion.scores)
        meaning = "; ".join(f"{s} = {m}" for s, m in sorted(criterion.scores.items()))
        about = f" ({criterion.description})" if criterion.description else ""
        ask = f"\n\nScore it on {name}{about} from {low} to {high} ({meaning})."
        if constrained:
            # Measured with SmolLM2-135M under the grammar, 10 records: with the two examples
            # below, 23 of 33 candidates failed, their reasons copied in every attempt (a
            # copied reason judges nothing); without them, none of 10 failed.
            ask += " Answer with the score, then the reason for it."
        else:
            # Two example answers at opposite ends and a "Score:" prefill. Measured with
            # SmolLM2-135M on 12 answers: 12 began with a score (7 without examples or
            # prefill), and unlike a single example (whose score 4 came back in 51 of 84
            # answers) the examples' own scores were not copied.
            examples = "\n".join(f"Score: {n}. Reason: {why}" for n, why in _examples(low, high))
            ask += f"\nAnswer like one of these examples:\n{examples}"
        system = render(self.system, row) if self.system else None
        head = (ChatMessage(role="system", content=system),) if system else ()
        return (
            *head,
            ChatMessage(role="user", content=render(self.prompt, row) + ask),
            ChatMessage(role="assistant", content="Score:"),
        )

    def criterion_grammar(self, name: str) -> str | None:
        """The answer's shape as a GBNF grammar (after the ``"Score:"`` prefill): a score in
        the criterion's range, then a reason. Under it every attempt gives a score in the
        scale; None for a range too wide to list."""
        scores = self.rubric[name].scores
        low, high = min(scores), max(scores)
        if high - low >= _GRAMMAR_MAX_SCORES:
            return None
        alternatives = " | ".join(f'"{n}"' for n in range(high, low - 1, -1))
        # The reason opens with a word: "1." or "5, as" is a second score, not a reason. A
        # second space is allowed: after a sampled ": " the model's word is " The", with its
        # own space; without it only space-less pieces ("ire", "ive") were left to pick.
        return f'root ::= " " ({alternatives}) ". Reason:" " " " "? [A-Za-z"\'] [^\\n]*\n'

    def parse_score(self, name: str, text: str) -> dict[str, Any]:
        scores = self.rubric[name].scores  # anchors: {1: useless, 5: perfect} admits 1 to 5
        # A scale below zero reads the sign: "-2" was read as 2, its worst score as its best.
        number = _FIRST_SIGNED_NUMBER if min(scores) < 0 else _FIRST_NUMBER
        match = number.search(text)
        if match is None:
            raise ValueError(f"no score for {name!r}")
        if text[match.end() :].lstrip().startswith("="):
            raise ValueError(f"the scale of {name!r} echoed, no score")
        score = int(match.group(0))
        if not min(scores) <= score <= max(scores):
            raise ValueError(f"score {score} for {name!r} is outside {min(scores)}-{max(scores)}")
        reason = _OUT_OF.sub("", text[match.end() :]).lstrip(" .:-)").strip()
        reason = _REASON.sub("", reason)
        if any(reason.startswith(why) for _, why in _examples(min(scores), max(scores))):
            raise ValueError(f"the example answer for {name!r} copied, no judgement")
        return {"score": score, "reason": reason.split("\n")[0].strip()[:300]}


#: Score ranges up to this wide are written into the judge's grammar one by one.
_GRAMMAR_MAX_SCORES = 101
_FIRST_NUMBER = re.compile(r"(?<![\d.])\d+(?![\d.]\d)")
_FIRST_SIGNED_NUMBER = re.compile(r"(?<![\d.])-?\d+(?![\d.]\d)")
_OUT_OF = re.compile(r"^\s*(?:/|out of)\s*\d+", re.IGNORECASE)
_REASON = re.compile(r"^reason\s*:\s*", re.IGNORECASE)


def _examples(low: int, high: int) -> list[tuple[int, str]]:
    """The judge's example answers: a low and a high score, reasons that judge nothing."""
    return [(min(low + 1, high), "it falls short on this."), (high, "it does this very well.")]


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str | None = None
    #: The instruction the role is given for its turn (Jinja2 over the row, ``turn`` and
    #: ``last`` — the other role's last message).
    prompt: str | None = None
    model: str | None = None
    params: dict[str, Any] = {}


class Dialogue(_Column):
    """A dialogue of ``turns`` messages, alternating between two roles, ``first`` opening.

    Each turn is an llm call over the turns before it, seen from the speaker's side (its own
    messages as the assistant's, the other role's as the user's)."""

    generated: ClassVar[bool] = True

    type: Literal["dialogue"] = "dialogue"
    turns: int = Field(4, ge=1, le=40)
    roles: dict[Literal["user", "assistant"], Role]
    first: Literal["user", "assistant"] = "user"

    @model_validator(mode="after")
    def _two_roles(self) -> Dialogue:
        if set(self.roles) != {"user", "assistant"}:
            raise ValueError("a dialogue needs both roles: user and assistant")
        check_templates(*self.texts())
        return self

    def texts(self) -> list[str | None]:
        return [t for role in self.roles.values() for t in (role.system, role.prompt)]

    def reads(self) -> dict[str, set[str]]:
        names = super().reads()
        names.pop("turn", None)  # given by the dialogue itself
        names.pop("last", None)
        return names

    def speaker(self, turn: int) -> Literal["user", "assistant"]:
        other: Literal["user", "assistant"] = "assistant" if self.first == "user" else "user"
        return self.first if turn % 2 == 0 else other

    def messages(
        self, turn: int, history: list[dict[str, str]], row: Mapping[str, Any]
    ) -> tuple[ChatMessage, ...]:
        speaker = self.speaker(turn)
        role = self.roles[speaker]
        context = {**row, "turn": turn + 1, "last": history[-1]["content"] if history else ""}
        out: list[ChatMessage] = []
        if role.system:
            out.append(ChatMessage(role="system", content=render(role.system, context)))
        for message in history:
            mine = message["role"] == speaker
            out.append(
                ChatMessage(role="assistant" if mine else "user", content=message["content"])
            )
        if role.prompt:
            out.append(ChatMessage(role="user", content=render(role.prompt, context)))
        elif not history or out[-1].role != "user":
            out.append(ChatMessage(role="user", content="Continue the conversation."))
        return tuple(out)
