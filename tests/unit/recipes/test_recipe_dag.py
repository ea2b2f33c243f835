"""Recipes as DAGs: resolution order, and every malformed recipe refused with one clear line.

Everything here is checked before any model is called: ``parse_recipe`` (a dict, as YAML gives
it), ``load_source_file`` (a YAML file) and ``Recipe.prepare`` (seed files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from textnlp.errors import InvalidInput, RecipeError, TemplateError
from textnlp.generation.recipes.recipe import Recipe, parse_recipe
from textnlp.generation.templates import load_source_file

LLM: dict[str, Any] = {"type": "llm-text", "prompt": "Say something."}


def recipe(columns: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"id": "r", "columns": columns, **top}


def refused(raw: dict[str, Any]) -> str:
    """The one-line message a malformed recipe is refused with."""
    with pytest.raises(RecipeError) as caught:
        parse_recipe(raw, source="bad.yaml")
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith("recipe bad.yaml"), message
    return message


# resolution ----------------------------------------------------------------------------------
def test_order_puts_every_column_after_what_it_reads() -> None:
    # Listed in the file against their dependencies on purpose.
    loaded = parse_recipe(
        recipe(
            {
                "verdict": {"type": "filter", "rule": "judge", "column": "score", "min": 3},
                "score": {
                    "type": "llm-judge",
                    "prompt": "Q: {{ question }} A: {{ answer }}",
                    "rubric": {"helpful": {"scores": {1: "no", 5: "yes"}}},
                },
                "answer": {"type": "llm-text", "prompt": "Answer {{ question }}"},
                "question": {
                    "type": "llm-text",
                    "prompt": "Ask about {{ issue }} as {{ who.name }}",
                },
                "issue": {"type": "subcategory", "parent": "topic", "values": {"a": [1], "b": [2]}},
                "who": {"type": "person"},
                "topic": {"type": "category", "values": ["a", "b"]},
            }
        ),
        source="ok.yaml",
    )
    order = loaded.order()
    assert sorted(order) == sorted(loaded.columns)
    for column, deps in loaded.graph().items():
        for dep in deps:
            assert order.index(dep) < order.index(column), (dep, column, order)
    assert loaded.graph()["issue"] == {"topic"}  # a subcategory's parent is a dependency
    assert loaded.graph()["question"] == {"issue", "who"}
    assert loaded.graph()["verdict"] == {"score"}
    assert loaded.generated() == ["score", "answer", "question"]
    assert loaded.filters() == ["verdict"]
    assert loaded.output_column() == "question"  # the last llm column that is not a judge


def test_jinja_globals_and_dialogue_variables_are_not_columns() -> None:
    loaded = parse_recipe(
        recipe(
            {
                "n": {"type": "expression", "expr": "{{ range(3) | list | length }}"},
                "chat": {
                    "type": "dialogue",
                    "turns": 2,
                    "roles": {
                        "user": {"prompt": "Turn {{ turn }} after {{ last }}, n={{ n }}"},
                        "assistant": {},
                    },
                },
            }
        ),
        source="ok.yaml",
    )
    assert loaded.graph() == {"n": set(), "chat": {"n"}}


@pytest.mark.parametrize("name", ["dict", "range", "namespace"])
def test_a_column_named_as_a_jinja_global_is_refused(name: str) -> None:
    """``{{ dict }}`` was no dependency: the reader ran first and wrote "<class 'dict'>"."""
    raw = recipe(
        {"e": {"type": "expression", "expr": f"value={{{{ {name} }}}}"}, name: {"type": "uuid"}},
        output="e",
    )
    assert f"column name {name!r} is one of Jinja2's own names" in refused(raw)


@pytest.mark.parametrize("name", ["turn", "last"])
def test_a_dialogue_reading_a_column_its_own_variable_hides_is_refused(name: str) -> None:
    """The dialogue's ``turn`` (``last``) replaced the column's value in its prompts, unsaid."""
    dialogue = {
        "type": "dialogue",
        "roles": {"user": {"prompt": f"Say {{{{ {name} }}}}"}, "assistant": {}},
    }
    raw = recipe({name: {"type": "category", "values": ["x"]}, "chat": dialogue})
    assert f"dialogue 'chat' reads {name!r}, which in a dialogue is its own" in refused(raw)


def test_a_recipe_in_python_is_the_same_thing() -> None:
    raw = recipe({"topic": {"type": "category", "values": ["x"]}, "q": LLM}, output="q")
    from_dict = Recipe.model_validate({**raw, "source": "python"})
    from_yaml = parse_recipe(yaml.safe_load(yaml.safe_dump(raw)), source="python")
    assert from_dict.model_dump() == from_yaml.model_dump()


# unknown columns, wherever they are named ----------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            recipe({"q": {"type": "llm-text", "prompt": "About {{ topc }}"}}),
            "column 'q' reads 'topc', which is not a column (columns: q)",
        ),
        (
            recipe({"q": {"type": "llm-text", "prompt": "x", "system": "You are {{ who }}"}}),
            "column 'q' reads 'who', which is not a column",
        ),
        (
            recipe({"q": LLM, "e": {"type": "expression", "expr": "{{ nope | upper }}"}}),
            "column 'e' reads 'nope', which is not a column",
        ),
        (
            recipe(
                {
                    "q": LLM,
                    "f": {"type": "filter", "rule": "length", "column": "answr", "min_chars": 1},
                }
            ),
            "column 'f' reads 'answr', which is not a column",
        ),
        (
            recipe(
                {"q": LLM, "f": {"type": "filter", "rule": "expression", "expr": "urgent == false"}}
            ),
            "column 'f' reads 'urgent', which is not a column",
        ),
        (
            recipe(
                {"q": LLM, "s": {"type": "subcategory", "parent": "topic", "values": {"a": [1]}}}
            ),
            "column 's' reads 'topic', which is not a column",
        ),
        (recipe({"q": LLM}, labels=["topic"]), "'topic' is not a column (columns: q)"),
        (recipe({"q": LLM}, output="answer"), "output 'answer' is not a column (columns: q)"),
        (
            recipe({"q": LLM}, export={"messages": [{"role": "user", "column": "prompt_col"}]}),
            "'prompt_col' is not a column",
        ),
        (
            recipe({"q": LLM}, export={"prompt": "q", "chosen": "good", "rejected": "q"}),
            "'good' is not a column",
        ),
    ],
    ids=[
        "prompt",
        "system",
        "expression",
        "filter-column",
        "filter-expression",
        "subcategory-parent",
        "labels",
        "output",
        "export-messages",
        "export-preference",
    ],
)
def test_an_unknown_column_is_named(raw: dict[str, Any], expected: str) -> None:
    assert expected in refused(raw)


def test_a_finished_filter_must_read_an_llm_column() -> None:
    raw = recipe({"n": {"type": "uniform", "low": 1, "high": 3}, "q": LLM,
                  "done": {"type": "filter", "rule": "finished", "column": "n"}})  # fmt: skip
    assert "filter 'done' reads how 'n''s model call ended, but 'n' is not an llm column" in (
        refused(raw)
    )
    raw["columns"]["done"]["column"] = "q"
    assert parse_recipe(raw, source="ok.yaml").filters() == ["done"]


def _checked(columns: dict[str, Any]) -> None:
    """What ``recipes validate`` and a run check before any model call."""
    from textnlp.backends.spec import ModelSpec
    from textnlp.generation.pipeline import DatasetPipeline, DatasetRequest

    spec = ModelSpec(id="m", backend="fake", context_length=4096)
    request = DatasetRequest(template=parse_recipe(recipe(columns), source="r.yaml"), count=1)
    DatasetPipeline.resolve(spec, request, lambda _: spec)


def test_a_prompt_asking_a_text_for_an_attribute_no_text_has_is_refused() -> None:
    """It passed `recipes validate`, then failed every candidate."""
    columns = {
        "topic": {"type": "category", "values": ["tea", "coffee"]},
        "say": {"type": "llm-text", "prompt": "About {{ topic.upper() }} and {{ topic.nosuch }}"},
    }
    with pytest.raises(RecipeError, match="column 'say': 'str object' has no attribute 'nosuch'"):
        _checked(columns)


def test_what_only_some_records_or_a_model_answer_hold_is_not_refused() -> None:
    """A dict's key another record may have, and anything of a model's answer."""
    _checked(
        {
            "item": {"type": "category", "values": [{"name": "pen"}, {"name": "cup", "size": 2}]},
            "facts": {
                "type": "llm-structured",
                "prompt": "facts of {{ item.name }}",
                "schema": {"type": "object"},
            },
            "say": {"type": "llm-text", "prompt": "{{ item.size }} {{ facts.title.upper() }}"},
        }
    )


def test_an_unusable_structured_schema_names_its_column() -> None:
    """It said only "json_schema cannot be used: ...", naming neither file nor column."""
    raw = recipe({"out": {"type": "llm-structured", "prompt": "hi", "schema": {"$ref": "#"}}})
    message = refused(raw)
    assert "columns.out.llm-structured.schema: invalid JSON Schema" in message, message
    assert "refers to itself without end" in message


def test_a_judge_filter_must_read_a_judge_column() -> None:
    """Passed `recipes validate`, then rejected every candidate ("holds str, not judge scores")."""
    raw = recipe({"q": LLM, "good": {"type": "filter", "rule": "judge", "column": "q", "min": 3}})
    assert "filter 'good' reads judge scores, but 'q' is not an llm-judge column" in refused(raw)


JUDGE: dict[str, Any] = {
    "type": "llm-judge",
    "prompt": "Rate {{ q }}",
    "rubric": {
        "helpful": {"scores": {1: "no", 5: "yes"}},
        "brief": {"scores": {1: "no", 3: "yes"}},
    },
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {"criteria": ["helpfull"], "min": 3},
            "filter 'good' reads the score 'helpfull', which 'score''s rubric lacks "
            "(criteria: helpful, brief)",
        ),
        (
            {"min": 6},
            "filter 'good' needs a score of 6, above 'score''s highest (5): every record "
            "would fail it",
        ),
        ({"criteria": ["brief"], "min": 4}, "needs a score of 4, above 'score''s highest (3)"),
    ],
    ids=["unknown-criterion", "min-above-scale", "min-above-criterion"],
)
def test_a_judge_filter_no_record_can_pass_is_refused(rule: dict[str, Any], expected: str) -> None:
    """Passed `recipes validate`, then rejected every candidate ("no score for 'helpfull'")."""
    columns = {
        "q": LLM,
        "score": JUDGE,
        "good": {"type": "filter", "rule": "judge", "column": "score", **rule},
    }
    assert expected in refused(recipe(columns))


def test_a_judge_filter_within_the_scale_loads() -> None:
    rule = {"type": "filter", "rule": "judge", "column": "score", "min": 5, "mode": "mean"}
    assert parse_recipe(recipe({"q": LLM, "score": JUDGE, "good": rule}), source="ok.yaml")


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        # A record's text was the filter's verdict: a dataset of "true".
        ({"output": "f"}, "output 'f' is a filter"),
        # Passed `recipes validate`, then stopped the run: "record 0 has no column 'f'".
        (
            {"output": "c", "export": {"messages": [{"role": "user", "column": "f"}]}},
            "export 'f' is a filter",
        ),
        ({"output": "c", "labels": ["f"]}, "label 'f' is a filter"),
    ],
    ids=["output", "export", "label"],
)
def test_a_filter_is_no_column_a_record_keeps(top: dict[str, Any], expected: str) -> None:
    length = {"type": "filter", "rule": "length", "column": "c", "min_chars": 1}
    raw = recipe({"c": {"type": "category", "values": ["x"]}, "f": length}, **top)
    assert expected in refused(raw)


# cycles ----------------------------------------------------------------------------------------
def test_a_cycle_is_named_in_order() -> None:
    message = refused(
        recipe(
            {
                "a": {"type": "llm-text", "prompt": "{{ c }}"},
                "b": {"type": "llm-text", "prompt": "{{ a }}"},
                "c": {"type": "expression", "expr": "{{ b }}"},
                "unrelated": {"type": "uuid"},
            }
        )
    )
    assert "columns form a cycle:" in message
    cycle = message.split("columns form a cycle: ", 1)[1].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(set(cycle)) == ["a", "b", "c"]
    # Each step of the cycle is a real edge: X -> Y where Y reads X or X reads Y, consistently.
    graph = {"a": {"c"}, "b": {"a"}, "c": {"b"}}
    steps = list(zip(cycle, cycle[1:], strict=False))
    assert all(y in graph[x] for x, y in steps) or all(x in graph[y] for x, y in steps)


def test_a_two_column_cycle_through_a_subcategory_parent() -> None:
    message = refused(
        recipe(
            {
                "kind": {"type": "subcategory", "parent": "label", "values": {"x": ["y"]}},
                "label": {"type": "expression", "expr": "{{ kind }}"},
                "q": LLM,
            }
        )
    )
    assert "columns form a cycle:" in message and "kind" in message and "label" in message


@pytest.mark.parametrize(
    "column",
    [
        {"type": "llm-text", "prompt": "Improve: {{ q }}"},
        {"type": "expression", "expr": "{{ q ~ '!' }}"},
    ],
)
def test_a_column_reading_itself_is_named(column: dict[str, Any]) -> None:
    message = refused(recipe({"q": column}, output="q"))
    assert "column 'q' reads itself" in message


# unknown kinds and bad parameters ------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"type": "llm-magic", "prompt": "x"}, ["'llm-magic'", "columns.c", "llm-text"]),
        ({"type": "zipf", "values": [1]}, ["'zipf'", "columns.c", "category"]),
        ({"type": "filter", "rule": "sentiment", "column": "q"}, ["'sentiment'", "near-duplicate"]),
        ({"type": "category", "value": ["a"]}, ["columns.c", "value"]),
    ],
    ids=["column-type", "sampler", "filter-rule", "misspelt-key"],
)
def test_an_unknown_kind_is_named(column: dict[str, Any], expected: list[str]) -> None:
    message = refused(recipe({"c": column, "q": LLM}))
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (
            {"type": "uniform", "low": "ten", "high": 3},
            "columns.c.uniform.low: Input should be a valid number",
        ),
        ({"type": "uniform", "low": 5, "high": 1}, "uniform needs low <= high"),
        (
            {"type": "bernoulli", "p": 1.5},
            "columns.c.bernoulli.p: Input should be less than or equal to 1",
        ),
        ({"type": "gaussian", "mean": 0, "stddev": -1}, "columns.c.gaussian.stddev"),
        ({"type": "poisson", "mean": "lots"}, "columns.c.poisson.mean"),
        ({"type": "category", "values": ["a", "b"], "weights": [1]}, "2 values"),
        ({"type": "datetime", "start": "2024-13-01", "end": "2024-12-31"}, "not an ISO 8601 date"),
        ({"type": "person", "locale": "xx_XX"}, "unknown locale 'xx_XX'"),
        ({"type": "person", "age": [50, 20]}, "age must be"),
    ],
    ids=[
        "uniform-type",
        "uniform-order",
        "bernoulli",
        "gaussian",
        "poisson",
        "weights",
        "date",
        "locale",
        "age",
    ],
)
def test_a_bad_sampler_parameter_is_named(column: dict[str, Any], expected: str) -> None:
    message = refused(recipe({"c": column, "q": LLM}))
    assert expected in message
    assert "columns.c" in message  # the column is named


@pytest.mark.parametrize(
    ("rubric", "expected"),
    [
        ({"helpful": {"description": "is it?"}}, "rubric.helpful.scores: Field required"),
        ({"helpful": {"scores": {5: "perfect"}}}, "a rubric criterion needs at least two scores"),
        ({"helpful": {"scores": {}}}, "a rubric criterion needs at least two scores"),
        ({}, "a judge needs a rubric with at least one criterion"),
    ],
    ids=["no-scores", "one-score", "empty-scores", "empty-rubric"],
)
def test_a_judge_rubric_without_scores_is_refused(rubric: dict[str, Any], expected: str) -> None:
    judge = {"type": "llm-judge", "prompt": "Rate {{ q }}", "rubric": rubric}
    message = refused(recipe({"q": LLM, "score": judge}))
    assert expected in message and "columns.score" in message


def test_a_missing_judge_rubric_is_refused() -> None:
    message = refused(recipe({"q": LLM, "score": {"type": "llm-judge", "prompt": "{{ q }}"}}))
    assert "columns.score.llm-judge.rubric: Field required" in message


def test_an_attribute_typo_on_a_person_is_named_with_the_fields() -> None:
    message = refused(
        recipe(
            {
                "person": {"type": "person"},
                "q": {"type": "llm-text", "prompt": "I am {{ person.nme }}"},
            }
        )
    )
    assert "column 'q' reads person.nme, but 'person' has no field 'nme'" in message
    assert "first_name" in message and "occupation" in message  # what it could have been


def test_an_attribute_typo_on_a_seed_column_with_declared_fields() -> None:
    seed = {"type": "seed", "path": "rows.jsonl", "fields": ["instruction"]}
    message = refused(
        recipe({"task": seed, "q": {"type": "llm-text", "prompt": "{{ task.instrction }}"}})
    )
    assert "reads task.instrction, but 'task' has no field 'instrction'" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            recipe({"c": {"type": "category", "values": [1, 2]}}),
            "without llm columns must name its output",
        ),
        (recipe({}), "a recipe needs at least one column"),
        (recipe({"q": {"type": "llm-text", "prompt": "{{ x"}}), "columns.q"),
        (recipe({"q": LLM}, id="Bad Id"), "id"),
    ],
    ids=["no-llm-no-output", "no-columns", "jinja-syntax", "bad-id"],
)
def test_other_malformed_recipes(raw: dict[str, Any], expected: str) -> None:
    assert expected in refused(raw)


N: dict[str, Any] = {"type": "uniform", "low": 1, "high": 3}


@pytest.mark.parametrize(
    ("column", "where"),
    [
        ({"type": "expression", "expr": "{{ n | nosuchfilter }}"}, "columns.c.expression.expr"),
        ({"type": "llm-text", "prompt": "Count to {{ n | nosuchfilter }}."}, "columns.c.llm-text"),
        ({"type": "llm-text", "prompt": "x", "system": "{{ n | nosuchfilter }}"}, "columns.c"),
        (
            {
                "type": "llm-judge",
                "prompt": "Rate {{ n | nosuchfilter }}",
                "rubric": {"good": {"scores": {1: "no", 5: "yes"}}},
            },
            "columns.c.llm-judge",
        ),
        (
            {
                "type": "dialogue",
                "roles": {"user": {"prompt": "{{ last | nosuchfilter }}"}, "assistant": {}},
            },
            "columns.c.dialogue",
        ),
        # Jinja's compiler leaves a filter under an `if` to the render; the check does not.
        (
            {"type": "expression", "expr": "{% if n > 1 %}{{ n | nosuchfilter }}{% endif %}"},
            "columns.c.expression.expr",
        ),
        (
            {"type": "expression", "expr": "{{ 'a' if n > 1 else (n | nosuchfilter) }}"},
            "columns.c.expression.expr",
        ),
    ],
    ids=["expression", "prompt", "system", "judge", "dialogue", "under-if", "conditional"],
)
def test_an_unknown_jinja_filter_is_named_on_load(column: dict[str, Any], where: str) -> None:
    message = refused(recipe({"n": N, "c": column}, output="c"))
    assert where in message and "line 1: no filter named 'nosuchfilter'" in message, message


def test_an_unknown_jinja_test_is_named_on_load() -> None:
    column = {"type": "expression", "expr": "{{ 'yes' if n is nosuchtest else 'no' }}"}
    message = refused(recipe({"n": N, "c": column}, output="c"))
    assert "columns.c.expression.expr: line 1: no test named 'nosuchtest'" in message


def test_known_jinja_filters_and_tests_load() -> None:
    expr = "{% filter upper %}{{ n | round | int }}{% endfilter %}{{ n is number }}"
    raw = recipe({"n": N, "c": {"type": "expression", "expr": expr}}, output="c")
    loaded = parse_recipe(raw, source="ok.yaml")
    assert loaded.graph()["c"] == {"n"}


def test_an_unknown_jinja_filter_in_a_yaml_file_is_refused_on_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: bad\noutput: e\ncolumns:\n"
        "  n: {type: uniform, low: 1, high: 3}\n"
        '  e: {type: expression, expr: "{{ n | nosuchfilter }}"}\n',
    )
    with pytest.raises(RecipeError) as caught:
        load_source_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "columns.e.expression.expr: line 1: no filter named 'nosuchfilter'" in message


# a subcategory against its category parent ----------------------------------------------------
def subcategory(choices: dict[Any, list[Any]], **parent: Any) -> dict[str, Any]:
    """``b``, a category of p and q (``parent`` overrides), and ``a``, its subcategory."""
    return recipe(
        {
            "b": {"type": "category", "values": ["p", "q"], **parent},
            "a": {"type": "subcategory", "parent": "b", "values": choices},
            "q": LLM,
        }
    )


def test_a_subcategory_lacking_a_parent_value_is_refused() -> None:
    message = refused(subcategory({"p": [1]}))
    assert "column 'a' has no values for b = 'q' (values given for: p)" in message


def test_every_missing_parent_value_is_named() -> None:
    raw = subcategory({"p": [1]}, values=["p", "q", "r", "q"])
    assert "column 'a' has no values for b = 'q', 'r' (values given for: p)" in refused(raw)


def test_a_subcategory_covering_its_parent_loads() -> None:
    # Extra keys are harmless; a parent value of weight 0 is never drawn, so it needs none.
    parse_recipe(subcategory({"p": [1], "q": [2], "z": [3]}), source="ok.yaml")
    parse_recipe(subcategory({"p": [1]}, weights=[1, 0]), source="ok.yaml")
    assert "b = 'p'" in refused(subcategory({"q": [2]}, weights=[1, 0]))


def test_non_text_parent_values_match_their_yaml_keys() -> None:
    raw = yaml.safe_load(
        "id: r\ncolumns:\n"
        "  stars: {type: category, values: [1, 2]}\n"
        "  urgent: {type: category, values: [true, false]}\n"
        "  a: {type: subcategory, parent: stars, values: {1: [low], 2: [high]}}\n"
        "  b: {type: subcategory, parent: urgent, values: {true: [now]}}\n"
        "  q: {type: llm-text, prompt: x}\n"
    )
    assert "column 'b' has no values for urgent = 'false' (values given for: true)" in refused(raw)
    raw["columns"]["b"]["values"][False] = ["later"]
    parse_recipe(raw, source="ok.yaml")


def test_a_parent_that_is_not_a_category_is_left_to_the_run() -> None:
    # An expression's values are known only when it is computed.
    raw = recipe(
        {
            "b": {"type": "expression", "expr": "{{ 'p' }}"},
            "a": {"type": "subcategory", "parent": "b", "values": {"p": [1]}},
            "q": LLM,
        }
    )
    parse_recipe(raw, source="ok.yaml")


def test_a_recipe_without_llm_columns_and_with_an_output_is_fine() -> None:
    loaded = parse_recipe(
        recipe({"c": {"type": "category", "values": [1, 2]}}, output="c"), source="x"
    )
    assert loaded.output_column() == "c" and loaded.generated() == []


def test_not_a_mapping() -> None:
    with pytest.raises(RecipeError, match="must be a YAML mapping"):
        parse_recipe(["columns"], source="bad.yaml")


# files: load_source_file and prepare (seed files) --------------------------------------------
def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yaml_recipe_with_a_cycle_is_refused_on_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: loop\ncolumns:\n"
        "  a: {type: llm-text, prompt: 'Use {{ b }}'}\n"
        "  b: {type: llm-text, prompt: 'Use {{ a }}'}\n",
    )
    with pytest.raises(RecipeError) as caught:
        load_source_file(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert "columns form a cycle: a -> b -> a" in message or "b -> a -> b" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # PyYAML kept the second column `a` and the second `output` without a word.
        (
            "id: twice\ncolumns:\n  a: {type: category, values: [x, y]}\n"
            "  a: {type: category, values: [z]}\noutput: a\n",
            "key 'a' is given twice (line 4, column 3)",
        ),
        (
            "id: twice\ncolumns:\n  a: {type: category, values: [x]}\noutput: a\noutput: a\n",
            "key 'output' is given twice (line 5, column 1)",
        ),
        # PyYAML raised a bare ValueError ("month must be in 1..12"): a traceback.
        (
            "id: when\ncolumns:\n  d: {type: datetime, start: 2024-13-01, end: 2024-12-31}\n"
            "output: d\n",
            "'2024-13-01' is not a valid date or time (month must be in 1..12) (line 3, column 30)",
        ),
        (
            "id: when\ndescription: 2024-02-30\ncolumns:\n  d: {type: uuid}\noutput: d\n",
            "'2024-02-30' is not a valid date or time",
        ),
    ],
    ids=["column-twice", "output-twice", "month-13", "february-30"],
)
def test_a_yaml_mistake_is_one_line_naming_the_file_and_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TemplateError) as caught:
        load_source_file(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path} is not valid YAML: ")
    assert expected in message


def test_a_yaml_recipe_loads_and_its_seed_paths_start_at_its_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tasks.jsonl").write_text('{"topic": "tea"}\n{"topic": "rain"}\n')
    path = write(
        tmp_path / "data",
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: tasks.jsonl}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }}'}\n",
    )
    loaded = load_source_file(path)
    assert isinstance(loaded, Recipe) and loaded.base_dir == tmp_path / "data"
    loaded.prepare()  # found beside the recipe, whatever the working directory
    assert loaded.columns["task"].fields() == frozenset({"topic"})  # type: ignore[union-attr]


def test_a_missing_seed_file_is_named_by_prepare(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: nowhere.jsonl}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }}'}\n",
    )
    loaded = load_source_file(path)  # loading does not read seed files
    assert isinstance(loaded, Recipe)
    with pytest.raises(RecipeError) as caught:
        loaded.prepare()
    assert str(caught.value) == "seed file nowhere.jsonl does not exist"


def test_a_field_the_seed_file_lacks_is_named_by_prepare(tmp_path: Path) -> None:
    (tmp_path / "tasks.csv").write_text("topic,level\ntea,1\nrain,2\n")
    path = write(
        tmp_path,
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: tasks.csv}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }} for {{ task.audience }}'}\n",
    )
    loaded = load_source_file(path)
    assert isinstance(loaded, Recipe)
    with pytest.raises(RecipeError) as caught:
        loaded.prepare()
    message = str(caught.value)
    assert "\n" not in message
    assert "column 'q' reads task.audience, but 'task' has no field 'audience'" in message
    assert "(fields: level, topic)" in message


def test_a_declared_field_the_seed_file_lacks_is_named_by_prepare(tmp_path: Path) -> None:
    (tmp_path / "tasks.jsonl").write_text('{"topic": "tea"}\n')
    path = write(
        tmp_path,
        "id: seeded\ncolumns:\n"
        "  task: {type: seed, path: tasks.jsonl, fields: [topic, instruction]}\n"
        "  q: {type: llm-text, prompt: 'About {{ task.topic }}'}\n",
    )
    loaded = load_source_file(path)
    assert isinstance(loaded, Recipe)
    with pytest.raises(
        RecipeError, match=r"^seed file tasks.jsonl has no field 'instruction' \(fields: topic\)$"
    ):
        loaded.prepare()


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("", "empty.jsonl", "seed file empty.jsonl is empty"),
        ('{"a": 1}\nnot json\n', "broken.jsonl", "line 2 is not valid JSON"),
        ("a,b\n", "tasks.txt", "unknown format '.txt'"),
    ],
)
def test_unreadable_seed_files_are_one_line(
    tmp_path: Path, content: str, name: str, expected: str
) -> None:
    (tmp_path / name).write_text(content)
    path = write(
        tmp_path,
        f"id: seeded\ncolumns:\n  task: {{type: seed, path: {name}}}\n"
        "  q: {type: llm-text, prompt: x}\n",
    )
    loaded = load_source_file(path)
    assert isinstance(loaded, Recipe)
    with pytest.raises(RecipeError) as caught:
        loaded.prepare()
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_recipe_errors_are_bad_input() -> None:
    """The CLI's exit 2 and the API's 4xx come from the class."""
    assert issubclass(RecipeError, InvalidInput)


def test_an_expression_keeps_text_that_only_yaml_1_1_reads_as_a_number() -> None:
    from textnlp.generation.recipes.columns import Expression

    column = Expression(expr="{{ a }}")
    for text in ("02134", "1_000", "Infinity", "nan", "12:30"):
        assert column.evaluate({"a": text}) == text
    assert column.evaluate({"a": "42"}) == 42 and column.evaluate({"a": True}) is True
