"""Sampler columns: values drawn at random, with no model call.

Every sampler draws from ``ctx.rng()`` (or a generator seeded with ``ctx.cell_seed``), so a
value depends only on (run seed, record index, column name). Values are JSON-safe: dates are
ISO 8601 strings, UUIDs strings, a person or a seed row a dict of them. Parameters are checked
when the recipe is loaded (a ``ValueError`` in a validator, which the loader turns into a
``RecipeError``; the recipe checks a subcategory against a category parent's values); what can
only go wrong while sampling (a value of another kind of parent with no choices, a seed file
used up) raises ``RecipeError``. The person sampler's Faker machinery is in ``person``.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import random
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from textnlp.errors import RecipeError
from textnlp.generation.recipes.base import CellContext, cell_seed
from textnlp.generation.recipes.person import PERSON_FIELDS, known_locale, make_person
from textnlp.generation.recipes.seeds import (
    SeedExhausted,
    display_name,
    json_safe,
    load_seed_rows,
)
from textnlp.generation.templates import wanted_number

#: A float that is a number (YAML's ``.inf`` and ``.nan`` are refused).
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Sampler(BaseModel):
    """What every sampler shares; the engine calls these four methods."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""

    def references(self) -> set[str]:
        """Names of the other columns this one reads."""
        return set()

    def fields(self) -> frozenset[str] | None:
        """The keys of a dict value (for checking ``{{ column.key }}``), else ``None``."""
        return None

    def prepare(self, base_dir: Path) -> None:
        """Load and check what sampling needs, once, before the run."""

    def sample(self, ctx: CellContext) -> Any:  # pragma: no cover - every sampler overrides
        raise NotImplementedError

    def refuses(self, value: Any) -> str | None:
        """What a value fixed by the user (``--var``) should be, if ``value`` is not that: a
        number column's draw is compared and computed with, so text there fails records later."""
        return None


def _check_weights(weights: list[float], count: int, where: str) -> None:
    if len(weights) != count:
        raise ValueError(f"{where}: {len(weights)} weights for {count} values")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"{where}: weights must be non-negative with a positive sum")


def _fresh(value: Any) -> Any:
    """A copy of a container value, so that a record's edits never reach the recipe's lists."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def wanted_instead(column: object, value: Any) -> str | None:
    """What ``column`` takes, when ``value`` (fixed by the user) is not that; else None."""
    return column.refuses(value) if isinstance(column, _Sampler) else None


def _choose(rng: random.Random, values: list[Any], weights: list[float] | None) -> Any:
    if weights is None:
        return _fresh(rng.choice(values))
    return _fresh(rng.choices(values, weights=weights)[0])


class CategorySampler(_Sampler):
    """One of ``values``, uniformly or by ``weights``."""

    type: Literal["category"] = "category"
    values: list[Any]
    weights: list[Finite] | None = None

    @field_validator("values")
    @classmethod
    def _values_are_json(cls, values: list[Any]) -> list[Any]:
        if not values:
            raise ValueError("values must not be empty")
        return [json_safe(v) for v in values]  # YAML dates become ISO strings

    @model_validator(mode="after")
    def _weights_fit(self) -> CategorySampler:
        if self.weights is not None:
            _check_weights(self.weights, len(self.values), "category")
        return self

    def drawable(self) -> list[Any]:
        """The values a draw can give (a value of weight 0 never comes)."""
        if self.weights is None:
            return list(self.values)
        return [v for v, w in zip(self.values, self.weights, strict=True) if w > 0]

    def sample(self, ctx: CellContext) -> Any:
        return _choose(ctx.rng(), self.values, self.weights)


def parent_key(value: Any) -> str:
    """The key a parent's value is looked up by in ``values``: scalars as YAML spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


class SubcategorySampler(_Sampler):
    """One of the choices listed for the value of the ``parent`` column."""

    type: Literal["subcategory"] = "subcategory"
    parent: str = Field(min_length=1)
    values: dict[str, list[Any]]
    weights: dict[str, list[Finite]] | None = None

    @field_validator("values", "weights", mode="before")
    @classmethod
    def _keys_as_text(cls, mapping: Any) -> Any:
        # YAML reads `1:` or `true:` as int/bool keys; the parent's value is looked up as text.
        if isinstance(mapping, dict):
            return {parent_key(k): v for k, v in mapping.items()}
        return mapping

    @field_validator("values")
    @classmethod
    def _choices_are_json(cls, values: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not values:
            raise ValueError("values must map parent values to choices")
        for key, choices in values.items():
            if not choices:
                raise ValueError(f"values of {key!r} must not be empty")
        return {key: [json_safe(c) for c in choices] for key, choices in values.items()}

    @model_validator(mode="after")
    def _weights_fit(self) -> SubcategorySampler:
        for key, weights in (self.weights or {}).items():
            if key not in self.values:
                raise ValueError(f"weights given for {key!r}, which has no values")
            _check_weights(weights, len(self.values[key]), f"subcategory {key!r}")
        return self

    def references(self) -> set[str]:
        return {self.parent}

    def unlisted(self, parent_values: list[Any]) -> list[str]:
        """The keys of ``parent_values`` that ``values`` has no choices for, in their order."""
        keys = dict.fromkeys(parent_key(v) for v in parent_values)
        return [key for key in keys if key not in self.values]

    def sample(self, ctx: CellContext) -> Any:
        if self.parent not in ctx.row:
            raise RecipeError(
                f"column {ctx.column!r}: parent column {self.parent!r} has no value yet"
            )
        key = parent_key(ctx.row[self.parent])
        choices = self.values.get(key)
        if choices is None:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise RecipeError(
                f"column {ctx.column!r}: no values for {self.parent} = {shown!r} "
                f"(known: {', '.join(self.values)})"
            )
        return _choose(ctx.rng(), choices, (self.weights or {}).get(key))


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


class UniformSampler(_Sampler):
    """A number in ``[low, high]``: an integer (both ends included) or a rounded float."""

    type: Literal["uniform"] = "uniform"
    low: Finite
    high: Finite
    integer: bool = False
    decimals: int | None = Field(default=3, ge=0, le=15)

    @model_validator(mode="after")
    def _ordered(self) -> UniformSampler:
        if self.low > self.high:
            raise ValueError("uniform needs low <= high")
        if not math.isfinite(self.high - self.low):  # every draw was ``high``
            raise ValueError("uniform: high - low must be a finite number")
        if self.integer and math.ceil(self.low) > math.floor(self.high):
            raise ValueError("uniform: no integer between low and high")
        return self

    def refuses(self, value: Any) -> str | None:
        return wanted_number(value, whole=self.integer)

    def sample(self, ctx: CellContext) -> int | float:
        rng = ctx.rng()
        if self.integer:
            return rng.randint(math.ceil(self.low), math.floor(self.high))
        value = rng.uniform(self.low, self.high)
        if self.decimals is not None:
            value = _clamp(round(value, self.decimals), self.low, self.high)
        return value


#: Standard deviations a gaussian draw may reach that are checked to stay finite (a draw
#: beyond 12 has a chance under 1e-32).
_GAUSSIAN_REACH = 12


class GaussianSampler(_Sampler):
    """A normal draw, optionally clamped to ``[min, max]`` and rounded."""

    type: Literal["gaussian"] = "gaussian"
    mean: Finite
    stddev: Finite = Field(gt=0)
    min: Finite | None = None
    max: Finite | None = None
    decimals: int | None = Field(default=3, ge=0, le=15)

    @model_validator(mode="after")
    def _ordered(self) -> GaussianSampler:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("gaussian needs min <= max")
        if not math.isfinite(abs(self.mean) + _GAUSSIAN_REACH * self.stddev):
            raise ValueError("gaussian: mean and stddev so large that a draw may be infinite")
        return self

    def refuses(self, value: Any) -> str | None:
        return wanted_number(value, whole=False)

    def sample(self, ctx: CellContext) -> float:
        value = ctx.rng().gauss(self.mean, self.stddev)
        if self.decimals is not None:
            value = round(value, self.decimals)
        return _clamp(value, self.min, self.max)


class PoissonSampler(_Sampler):
    """A count with the given mean, optionally clamped to ``[min, max]``."""

    type: Literal["poisson"] = "poisson"
    # numpy refuses means near 2**63; far below that a count is no longer meaningful anyway.
    mean: Finite = Field(gt=0, le=1e12)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> PoissonSampler:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("poisson needs min <= max")
        return self

    def refuses(self, value: Any) -> str | None:
        return wanted_number(value, whole=True)

    def sample(self, ctx: CellContext) -> int:
        import numpy as np

        # numpy's sampler is exact for any mean (Knuth's loop is slow and underflows past ~700).
        value = int(np.random.default_rng(ctx.cell_seed).poisson(self.mean))
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return value


class BernoulliSampler(_Sampler):
    """``True`` with probability ``p``."""

    type: Literal["bernoulli"] = "bernoulli"
    p: Finite = Field(ge=0, le=1)

    def refuses(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "true or false"

    def sample(self, ctx: CellContext) -> bool:
        return ctx.rng().random() < self.p


def _moment(value: Any) -> Any:
    """An ISO 8601 string as a ``date`` (date only) or a ``datetime``; objects pass through."""
    if not isinstance(value, str):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None


class DatetimeSampler(_Sampler):
    """A moment in ``[start, end]``: a day, or a second; an ISO string unless ``format`` is given.

    With ``unit: second`` a date-only ``end`` includes that whole day.
    """

    type: Literal["datetime"] = "datetime"
    start: dt.datetime | dt.date
    end: dt.datetime | dt.date
    unit: Literal["day", "second"] = "day"
    #: A ``strftime`` format (e.g. ``"%d/%m/%Y"``); by default ISO 8601.
    format: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return _moment(value)

    @model_validator(mode="after")
    def _ordered(self) -> DatetimeSampler:
        start, end = self._bounds()
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise ValueError("datetime: give a time zone on both start and end, or on neither")
        if start > end:
            raise ValueError("datetime needs start <= end")
        if self.format is not None:
            try:
                start.strftime(self.format)
            except ValueError as exc:
                raise ValueError(f"datetime: bad format ({exc})") from None
        return self

    def _bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """``start`` and ``end`` as datetimes, ``end`` at the last second of a date-only end."""
        start = _as_datetime(self.start)
        end = _as_datetime(self.end)
        if not isinstance(self.end, dt.datetime):
            end += dt.timedelta(days=1, seconds=-1)
        return start, end

    def sample(self, ctx: CellContext) -> str:
        rng = ctx.rng()
        start, end = self._bounds()
        value: dt.date
        if self.unit == "day":
            first, last = start.date(), end.date()
            value = first + dt.timedelta(days=rng.randint(0, (last - first).days))
        else:
            span = int((end - start).total_seconds())
            value = start + dt.timedelta(seconds=rng.randint(0, span))
        return value.strftime(self.format) if self.format else value.isoformat()


def _as_datetime(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)


class UuidSampler(_Sampler):
    """A random (version 4) UUID as a string, reproducible like every other sampler."""

    type: Literal["uuid"] = "uuid"

    def sample(self, ctx: CellContext) -> str:
        return str(uuid.UUID(int=ctx.rng().getrandbits(128), version=4))


class PersonSampler(_Sampler):
    """A consistent made-up person of a locale (Faker's data): name, age, job, city, email..."""

    type: Literal["person"] = "person"
    locale: str = "en_US"
    sex: Literal["female", "male", "any"] = "any"
    age: tuple[int, int] = (18, 80)

    @field_validator("locale")
    @classmethod
    def _known_locale(cls, locale: str) -> str:
        return known_locale(locale)

    @field_validator("age")
    @classmethod
    def _ages(cls, age: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= age[0] <= age[1] <= 130:
            raise ValueError("age must be [min, max] with 0 <= min <= max <= 130")
        return age

    def fields(self) -> frozenset[str]:
        return PERSON_FIELDS

    def sample(self, ctx: CellContext) -> dict[str, Any]:
        rng = ctx.rng()
        gender = self.sex if self.sex != "any" else rng.choice(("female", "male"))
        age = rng.randint(*self.age)
        return make_person(self.locale, gender, age, seed=ctx.cell_seed)


class SeedSampler(_Sampler):
    """A row (a dict) of a JSONL, CSV or Parquet file.

    ``replace: true`` draws any row for each record (``shuffle: false``: rows in file order,
    cycling); ``replace: false`` gives each row once, in an order fixed by the run seed (file
    order with ``shuffle: false``), and fails once every row is used.
    """

    type: Literal["seed"] = "seed"
    path: str = Field(min_length=1)
    replace: bool = True
    shuffle: bool = True
    fields_: list[str] | None = Field(default=None, alias="fields", min_length=1)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    _rows: list[dict[str, Any]] | None = PrivateAttr(default=None)
    _columns: frozenset[str] | None = PrivateAttr(default=None)
    _order: tuple[int, str, list[int]] | None = PrivateAttr(default=None)

    @field_validator("fields_")
    @classmethod
    def _distinct(cls, fields: list[str] | None) -> list[str] | None:
        if fields is not None and len(set(fields)) != len(fields):
            raise ValueError("fields must not repeat")
        return fields

    def fields(self) -> frozenset[str] | None:
        """The row's keys: known after ``prepare``, or from ``fields:`` before."""
        if self._columns is not None:
            return self._columns
        return frozenset(self.fields_) if self.fields_ is not None else None

    def prepare(self, base_dir: Path) -> None:
        if self._rows is not None:
            return
        path = Path(self.path)
        rows = load_seed_rows(path if path.is_absolute() else base_dir / path, name=self.path)
        columns = list(rows[0])  # every row has the same keys
        if self.fields_ is not None:
            for field in self.fields_:
                if field not in columns:
                    shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
                    raise RecipeError(
                        f"seed file {display_name(self.path)} has no field {field!r} "
                        f"(fields: {display_name(shown)})"
                    )
            keep = self.fields_
            rows = [{field: row[field] for field in keep} for row in rows]
            columns = keep
        self._columns = frozenset(columns)
        self._rows = rows

    def sample(self, ctx: CellContext) -> dict[str, Any]:
        if self._rows is None:
            self.prepare(ctx.base_dir)
        rows = self._rows
        assert rows is not None  # noqa: S101 - prepare sets it or raises
        if self.replace:
            position = ctx.rng().randrange(len(rows)) if self.shuffle else ctx.index % len(rows)
        else:
            if ctx.index >= len(rows):
                raise SeedExhausted(
                    f"seed file {display_name(self.path)} has {len(rows)} rows; "
                    f"record {ctx.index} needs another (replace: false)"
                )
            position = self._permutation(ctx)[ctx.index]
        return dict(_fresh(rows[position]))

    def _permutation(self, ctx: CellContext) -> list[int]:
        """The order rows are given in: the same for every record of a run.

        Seeded by the run seed and the column name (not the record), so two seed columns of
        equally long files do not pair row k with row k.
        """
        cached = self._order
        if cached is not None and cached[:2] == (ctx.seed, ctx.column):
            return cached[2]
        order = list(range(len(self._rows or ())))
        if self.shuffle:
            random.Random(cell_seed(ctx.seed, -1, ctx.column)).shuffle(order)
        self._order = (ctx.seed, ctx.column, order)
        return order


Sampler = Annotated[
    CategorySampler
    | SubcategorySampler
    | UniformSampler
    | GaussianSampler
    | PoissonSampler
    | BernoulliSampler
    | DatetimeSampler
    | UuidSampler
    | PersonSampler
    | SeedSampler,
    Field(discriminator="type"),
]

SAMPLER_TYPES = (
    "category",
    "subcategory",
    "uniform",
    "gaussian",
    "poisson",
    "bernoulli",
    "datetime",
    "uuid",
    "person",
    "seed",
)
