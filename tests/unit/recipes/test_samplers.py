from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from textnlp.errors import RecipeError
from textnlp.generation.recipes.base import CellContext
from textnlp.generation.recipes.samplers import (
    SAMPLER_TYPES,
    PersonSampler,
    Sampler,
    SeedSampler,
)
from textnlp.generation.recipes.seeds import SeedExhausted, load_seed_rows

N = 5000
ADAPTER: TypeAdapter[Any] = TypeAdapter(Sampler)


def sampler(**spec: Any) -> Any:
    return ADAPTER.validate_python(spec)


def ctx(index: int = 0, column: str = "col", seed: int = 7, **row: Any) -> CellContext:
    return CellContext(seed=seed, index=index, column=column, row=row)


def draw(s: Any, n: int = N, column: str = "col", **row: Any) -> list[Any]:
    return [s.sample(ctx(i, column, **row)) for i in range(n)]


def test_every_type_name_is_in_the_union() -> None:
    assert len(SAMPLER_TYPES) == 10
    for name in SAMPLER_TYPES:
        assert name in str(ADAPTER.json_schema())


def test_unknown_type_and_extra_keys_are_refused() -> None:
    with pytest.raises(ValidationError):
        sampler(type="zipf", values=[1])
    with pytest.raises(ValidationError):
        sampler(type="category", values=[1], typo=True)


# ---- category / subcategory -------------------------------------------------------------


def test_category_follows_weights() -> None:
    counts = Counter(draw(sampler(type="category", values=["a", "b", "c"], weights=[6, 3, 1])))
    assert abs(counts["a"] / N - 0.6) < 0.03
    assert abs(counts["b"] / N - 0.3) < 0.03
    assert abs(counts["c"] / N - 0.1) < 0.02


def test_category_without_weights_is_uniform_and_json_safe() -> None:
    s = sampler(type="category", values=["x", dt.date(2024, 5, 1)])
    counts = Counter(draw(s))
    assert set(counts) == {"x", "2024-05-01"}  # a YAML date becomes its ISO string
    assert abs(counts["x"] / N - 0.5) < 0.03


@pytest.mark.parametrize(
    "spec",
    [
        {"values": []},
        {"values": ["a", "b"], "weights": [1]},
        {"values": ["a", "b"], "weights": [0, 0]},
        {"values": ["a", "b"], "weights": [1, -1]},
        {"values": ["a"], "weights": [float("inf")]},
    ],
)
def test_category_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="category", **spec)


def test_category_container_values_are_copied() -> None:
    s = sampler(type="category", values=[{"k": [1]}])
    value = s.sample(ctx())
    value["k"].append(2)
    assert s.sample(ctx()) == {"k": [1]}


def test_subcategory_depends_on_its_parent() -> None:
    s = sampler(
        type="subcategory",
        parent="topic",
        values={"billing": ["refund", "invoice"], "shipping": ["late", "lost"], 3: ["three"]},
        weights={"billing": [9, 1]},
    )
    assert s.references() == {"topic"}
    billing = Counter(draw(s, topic="billing"))
    assert set(billing) == {"refund", "invoice"}
    assert abs(billing["refund"] / N - 0.9) < 0.02
    assert set(draw(s, 200, topic="shipping")) == {"late", "lost"}
    assert s.sample(ctx(topic=3)) == "three"  # YAML int keys match the parent's int value


def test_subcategory_unknown_parent_value_names_column_value_and_keys() -> None:
    s = sampler(type="subcategory", parent="topic", values={"a": [1], "b": [2]})
    with pytest.raises(RecipeError) as info:
        s.sample(ctx(column="issue", topic="c"))
    message = info.value.message
    assert "issue" in message and "'c'" in message and "a, b" in message
    with pytest.raises(RecipeError, match="parent column 'topic'"):
        s.sample(ctx(column="issue"))


def test_subcategory_bool_parent_uses_yaml_spelling() -> None:
    s = sampler(type="subcategory", parent="urgent", values={True: ["now"], False: ["later"]})
    assert s.sample(ctx(urgent=True)) == "now"
    assert s.sample(ctx(urgent=False)) == "later"


@pytest.mark.parametrize(
    "spec",
    [
        {"values": {}},
        {"values": {"a": []}},
        {"values": {"a": [1, 2]}, "weights": {"a": [1]}},
        {"values": {"a": [1]}, "weights": {"b": [1]}},
    ],
)
def test_subcategory_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="subcategory", parent="p", **spec)


# ---- numbers --------------------------------------------------------------------------------


def test_uniform_integer_is_inclusive() -> None:
    values = draw(sampler(type="uniform", low=1, high=6, integer=True))
    assert set(values) == {1, 2, 3, 4, 5, 6}
    assert all(isinstance(v, int) for v in values)
    assert abs(statistics.fmean(values) - 3.5) < 0.1


def test_uniform_float_bounds_mean_and_rounding() -> None:
    values = draw(sampler(type="uniform", low=-2.0, high=4.0, decimals=2))
    assert all(-2.0 <= v <= 4.0 for v in values)
    assert all(round(v, 2) == v for v in values)
    assert abs(statistics.fmean(values) - 1.0) < 0.1
    assert abs(statistics.pstdev(values) - 6 / 12**0.5) < 0.05


@pytest.mark.parametrize(
    "spec",
    [
        {"low": 3, "high": 1},
        {"low": 0.2, "high": 0.8, "integer": True},
        # high - low overflows: every draw was 1.7e308.
        {"low": -1.7e308, "high": 1.7e308},
    ],
)
def test_uniform_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="uniform", **spec)


def test_gaussian_mean_and_stddev() -> None:
    values = draw(sampler(type="gaussian", mean=10.0, stddev=2.0))
    assert abs(statistics.fmean(values) - 10.0) < 0.1
    assert abs(statistics.pstdev(values) - 2.0) < 0.1


def test_gaussian_clamps() -> None:
    values = draw(sampler(type="gaussian", mean=0, stddev=1, min=-0.5, max=0.5, decimals=None))
    assert min(values) == -0.5 and max(values) == 0.5


@pytest.mark.parametrize(
    "spec",
    [
        {"stddev": 0},
        {"stddev": -1},
        {"stddev": float("nan")},
        {"stddev": 1, "min": 2, "max": 1},
        # Draws past 1.8e308 were infinite: a null value, "inf" in a prompt.
        {"stddev": 1e308},
    ],
)
def test_gaussian_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="gaussian", mean=0, **spec)


def test_gaussian_draws_of_huge_but_safe_parameters_are_finite() -> None:
    values = draw(sampler(type="gaussian", mean=1e300, stddev=1e299, decimals=None))
    assert all(math.isfinite(v) for v in values)


@pytest.mark.parametrize("mean", [0.7, 4.0, 1000.0])
def test_poisson_mean_and_variance(mean: float) -> None:
    values = draw(sampler(type="poisson", mean=mean))
    assert all(isinstance(v, int) and v >= 0 for v in values)
    tolerance = 4 * (mean / N) ** 0.5  # four standard errors of the mean
    assert abs(statistics.fmean(values) - mean) < tolerance
    assert abs(statistics.pvariance(values) / mean - 1) < 0.1


def test_poisson_clamps_and_checks() -> None:
    values = draw(sampler(type="poisson", mean=3, min=2, max=4), 1000)
    assert set(values) == {2, 3, 4}
    for spec in ({"mean": 0}, {"mean": 1, "min": 3, "max": 2}, {"mean": 1, "min": -1}):
        with pytest.raises(ValidationError):
            sampler(type="poisson", **spec)


def test_bernoulli_rate() -> None:
    values = draw(sampler(type="bernoulli", p=0.3))
    assert all(isinstance(v, bool) for v in values)
    assert abs(sum(values) / N - 0.3) < 0.03
    assert not any(draw(sampler(type="bernoulli", p=0), 500))
    assert all(draw(sampler(type="bernoulli", p=1), 500))
    with pytest.raises(ValidationError):
        sampler(type="bernoulli", p=1.5)


# ---- datetime / uuid ------------------------------------------------------------------------


def test_datetime_days_cover_the_range() -> None:
    s = sampler(type="datetime", start=dt.date(2024, 1, 1), end="2024-01-10")
    values = draw(s, 2000)
    assert {dt.date.fromisoformat(v) for v in values} == {dt.date(2024, 1, d) for d in range(1, 11)}


def test_datetime_seconds_include_a_date_only_end_day() -> None:
    s = sampler(type="datetime", start="2024-03-01", end="2024-03-01", unit="second")
    values = [dt.datetime.fromisoformat(v) for v in draw(s, 2000)]
    assert all(dt.datetime(2024, 3, 1) <= v <= dt.datetime(2024, 3, 1, 23, 59, 59) for v in values)
    assert max(values) - min(values) > dt.timedelta(hours=23)


def test_datetime_aware_bounds_and_format() -> None:
    s = sampler(
        type="datetime",
        start=dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC),
        end="2024-01-01T13:00:00Z",
        unit="second",
    )
    for v in draw(s, 500):
        moment = dt.datetime.fromisoformat(v)
        assert moment.utcoffset() == dt.timedelta(0)
        assert dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC) <= moment
        assert moment <= dt.datetime(2024, 1, 1, 13, tzinfo=dt.UTC)
    formatted = sampler(type="datetime", start="2024-02-03", end="2024-02-03", format="%d/%m/%Y")
    assert formatted.sample(ctx()) == "03/02/2024"


@pytest.mark.parametrize(
    "spec",
    [
        {"start": "2024-02-01", "end": "2024-01-01"},
        {"start": "yesterday", "end": "2024-01-01"},
        {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01"},
        {"start": "2024-01-01", "end": "2024-02-01", "unit": "hour"},
    ],
)
def test_datetime_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="datetime", **spec)


def test_uuids_are_version_4_and_unique() -> None:
    values = draw(sampler(type="uuid"))
    assert len(set(values)) == N
    assert all(uuid.UUID(v).version == 4 and str(uuid.UUID(v)) == v for v in values)


# ---- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "category", "values": list(range(100))},
        {"type": "uniform", "low": 0, "high": 1},
        {"type": "gaussian", "mean": 0, "stddev": 1},
        {"type": "poisson", "mean": 50},
        {"type": "datetime", "start": "2000-01-01", "end": "2030-01-01", "unit": "second"},
        {"type": "uuid"},
        {"type": "person"},
    ],
)
def test_a_value_depends_on_seed_index_and_column_only(spec: dict[str, Any]) -> None:
    s = sampler(**spec)
    again = sampler(**spec)
    first = [s.sample(ctx(i, "a")) for i in range(20)]
    assert first == [again.sample(ctx(i, "a", other="ignored")) for i in range(20)]
    assert first != [s.sample(ctx(i, "b")) for i in range(20)]
    assert first != [s.sample(ctx(i, "a", seed=8)) for i in range(20)]
    assert len({json.dumps(v, sort_keys=True) for v in first}) > 1  # records differ
    json.dumps(first)  # JSON-safe


# ---- person ---------------------------------------------------------------------------------


def test_person_fields_and_consistency() -> None:
    s = sampler(type="person", age=[30, 40])
    assert isinstance(s, PersonSampler)
    assert s.fields() == frozenset(
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
    people = draw(s, 300)
    for person in people:
        assert set(person) == s.fields()
        assert person["name"] == f"{person['first_name']} {person['last_name']}"
        assert 30 <= person["age"] <= 40
        assert person["locale"] == "en_US" and person["country"] == "United States"
        assert "@" in person["email"] and person["email"].isascii()
        assert all(isinstance(person[k], str) and person[k] for k in s.fields() - {"age"})
    genders = Counter(p["gender"] for p in people)
    assert set(genders) == {"female", "male"}


def test_person_sex_and_german_locale() -> None:
    from faker.providers.address.de_DE import Provider as GermanAddresses

    s = sampler(type="person", locale="de_DE", sex="female")
    for person in draw(s, 100):
        assert person["gender"] == "female"
        assert person["country"] == "Germany"
        assert person["city"] in GermanAddresses.cities


def test_person_family_name_first_locales() -> None:
    person = sampler(type="person", locale="ja_JP").sample(ctx())
    assert person["name"] == f"{person['last_name']} {person['first_name']}"
    assert person["country"] == "Japan"


@pytest.mark.parametrize("spec", [{"locale": "xx_XX"}, {"age": [50, 20]}, {"sex": "other"}])
def test_person_parameters_are_checked(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        sampler(type="person", **spec)


# ---- seed datasets --------------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [{"task": f"t{i}", "level": i % 3} for i in range(10)]


def write(tmp_path: Path, name: str, rows: list[dict[str, Any]] = ROWS) -> Path:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".csv"):
        lines = [",".join(rows[0])] + [",".join(str(v) for v in r.values()) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def seed(tmp_path: Path, **spec: Any) -> SeedSampler:
    s = sampler(type="seed", **spec)
    assert isinstance(s, SeedSampler)
    s.prepare(tmp_path)
    return s


@pytest.mark.parametrize("name", ["tasks.jsonl", "tasks.csv", "tasks.parquet"])
def test_seed_formats(tmp_path: Path, name: str) -> None:
    write(tmp_path, name)
    s = seed(tmp_path, path=name)
    assert s.fields() == frozenset({"task", "level"})
    rows = draw(s, 500)
    level = str if name.endswith(".csv") else int  # CSV cells are text
    expected = {json.dumps({"task": r["task"], "level": level(r["level"])}) for r in ROWS}
    assert {json.dumps(r) for r in rows} == expected  # all rows seen, nothing else


def test_seed_without_replacement_gives_each_row_once_then_fails(tmp_path: Path) -> None:
    write(tmp_path, "tasks.jsonl")
    s = seed(tmp_path, path="tasks.jsonl", replace=False)
    got = [s.sample(ctx(i))["task"] for i in range(len(ROWS))]
    assert sorted(got) == sorted(r["task"] for r in ROWS)
    assert got != [r["task"] for r in ROWS]  # shuffled
    assert got == [s.sample(ctx(i))["task"] for i in range(len(ROWS))]  # stable per run seed
    assert got != [s.sample(ctx(i, seed=8))["task"] for i in range(len(ROWS))]
    with pytest.raises(SeedExhausted) as info:
        s.sample(ctx(len(ROWS)))
    assert isinstance(info.value, RecipeError)
    assert info.value.message == (
        "seed file tasks.jsonl has 10 rows; record 10 needs another (replace: false)"
    )


def test_seed_in_file_order(tmp_path: Path) -> None:
    write(tmp_path, "tasks.jsonl")
    ordered = seed(tmp_path, path="tasks.jsonl", replace=False, shuffle=False)
    assert [ordered.sample(ctx(i))["task"] for i in range(10)] == [r["task"] for r in ROWS]
    cycling = seed(tmp_path, path="tasks.jsonl", shuffle=False)
    assert [cycling.sample(ctx(i))["task"] for i in range(12)][9:] == ["t9", "t0", "t1"]


def test_seed_with_replacement_is_reproducible(tmp_path: Path) -> None:
    write(tmp_path, "tasks.jsonl")
    s = seed(tmp_path, path="tasks.jsonl")
    first = draw(s, 50)
    assert first == draw(seed(tmp_path, path="tasks.jsonl"), 50)
    assert first != draw(s, 50, column="other")
    counts = Counter(r["task"] for r in draw(s))
    assert max(counts.values()) - min(counts.values()) < 150  # roughly uniform over 10 rows


def test_seed_fields_keep_only_those(tmp_path: Path) -> None:
    write(tmp_path, "tasks.jsonl")
    s = sampler(type="seed", path="tasks.jsonl", fields=["task"])
    assert s.fields() == frozenset({"task"})  # known before prepare
    s.prepare(tmp_path)
    assert set(s.sample(ctx())) == {"task"}
    with pytest.raises(RecipeError) as info:
        seed(tmp_path, path="tasks.jsonl", fields=["task", "topic"])
    assert info.value.message == "seed file tasks.jsonl has no field 'topic' (fields: task, level)"


def test_seed_rows_are_copies_and_prepare_is_idempotent(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks.jsonl")
    s = seed(tmp_path, path="tasks.jsonl", shuffle=False)
    s.sample(ctx(0))["task"] = "changed"
    path.unlink()
    s.prepare(tmp_path)  # no re-read
    assert s.sample(ctx(0))["task"] == "t0"


def test_seed_prepares_lazily_from_the_context(tmp_path: Path) -> None:
    write(tmp_path, "tasks.jsonl")
    s = sampler(type="seed", path="tasks.jsonl", shuffle=False)
    row = s.sample(CellContext(seed=1, index=0, column="c", row={}, base_dir=tmp_path))
    assert row == ROWS[0]


def test_seed_jsonl_rows_get_every_key(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"a": 1}\n\n{"b": [1, 2]}\n', encoding="utf-8")
    assert load_seed_rows(tmp_path / "s.jsonl") == [{"a": 1, "b": None}, {"a": None, "b": [1, 2]}]


def test_seed_parquet_values_become_json(tmp_path: Path) -> None:
    rows = [{"when": dt.datetime(2024, 1, 2, 3, 4), "day": dt.date(2024, 1, 2), "x": float("nan")}]
    write(tmp_path, "s.parquet", rows)
    assert load_seed_rows(tmp_path / "s.parquet") == [
        {"when": "2024-01-02T03:04:00", "day": "2024-01-02", "x": None}
    ]


def test_seed_absolute_path(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks.csv")
    s = seed(Path("/nonexistent"), path=str(path))
    assert s.sample(ctx())["task"].startswith("t")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "seed file missing.jsonl does not exist"),
        ("empty.jsonl", "\n\n", "seed file empty.jsonl is empty"),
        ("empty.csv", "a,b\n", "seed file empty.csv is empty"),
        ("bad.jsonl", '{"a": 1}\n{"a": \n', "seed file bad.jsonl: line 2 is not valid JSON"),
        ("list.jsonl", '{"a": 1}\n\n[1, 2]\n', "seed file list.jsonl: line 3 is not a JSON object"),
        ("nan.jsonl", '{"a": NaN}\n', "seed file nan.jsonl: line 1 is not valid JSON"),
        # Accepted, then every prompt that quoted it failed to encode
        (
            "lone.jsonl",
            '{"x": {"y": "a \\ud800"}}\n',
            "seed file lone.jsonl: line 1, field x.y: text is not valid Unicode",
        ),  # fmt: skip
        (
            "wide.csv",
            "a,b\n1,2\n1,2,3\n",
            "seed file wide.csv: row 2 (line 3): 3 fields, the header has 2",
        ),
        (
            "short.csv",
            "text,x\nhello,1\nworld\n",
            "seed file short.csv: row 2 (line 3): 1 field, the header",
        ),
        (
            "open.csv",
            'a,b\n"never closed,1\n',
            "seed file open.csv: line 2: cannot read the CSV record (a quoted field is never",
        ),
        ("dup.csv", "a,a\n1,2\n", "seed file dup.csv: the header repeats a"),
        ("tasks.txt", "hello\n", "seed file tasks.txt: unknown format '.txt'"),
        ("broken.parquet", "not parquet", "seed file broken.parquet cannot be read"),
    ],
)
def test_seed_file_errors(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        seed(tmp_path, path=name)
    assert info.value.message.startswith(message)
    assert "\n" not in info.value.message


def test_seed_refuses_directories_and_binary(tmp_path: Path) -> None:
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(RecipeError, match=r"^seed file dir.jsonl is not a regular file$"):
        seed(tmp_path, path="dir.jsonl")
    (tmp_path / "bin.jsonl").write_bytes(b'{"secret": "\xff\xfe"}\n')
    with pytest.raises(RecipeError) as info:
        seed(tmp_path, path="bin.jsonl")
    assert info.value.message == "seed file bin.jsonl is not UTF-8 text"


def test_seed_errors_never_quote_the_file(tmp_path: Path) -> None:
    (tmp_path / "s.jsonl").write_text('{"a": 1}\n{"password": hunter2}\n', encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        seed(tmp_path, path="s.jsonl")
    assert "hunter2" not in info.value.message and "password" not in info.value.message


def test_seed_row_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from textnlp.generation.recipes import seeds

    monkeypatch.setattr(seeds, "MAX_SEED_ROWS", 5)
    write(tmp_path, "tasks.jsonl")
    with pytest.raises(RecipeError, match="more than 5 rows"):
        seed(tmp_path, path="tasks.jsonl")
    write(tmp_path, "tasks.parquet")
    with pytest.raises(RecipeError, match="more than 5 rows"):
        seed(tmp_path, path="tasks.parquet")


def test_other_samplers_have_no_fields_or_references() -> None:
    s = sampler(type="uniform", low=0, high=1)
    assert s.fields() is None and s.references() == set()
    s.prepare(Path())
