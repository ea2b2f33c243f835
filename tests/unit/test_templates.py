from __future__ import annotations

import re
from pathlib import Path

import pytest

from textnlp.errors import TemplateError, TemplateNotFound
from textnlp.generation.templates import (
    TemplateLibrary,
    load_template_file,
    parse_template,
    record_seed,
    wanted_number,
)
from textnlp.strict_json import extract_json_object

TEMPLATE = {
    "id": "demo",
    "version": "2",
    "system": "You are helpful.",
    "user": "Write about {{ topic }} in {{ words }} words, rated {{ rating }} ({{ mood }}).",
    "variables": {
        "topic": {"values": ["cats", "dogs", "birds"]},
        "rating": {"weights": {"1": 1, "5": 3}},
        "words": {"range": [10, 20]},
        "mood": {"expr": "{{ 'happy' if rating == 5 else 'sad' }}"},
    },
}


def test_builtins_are_at_least_five_and_all_render() -> None:
    library = TemplateLibrary.load()
    assert len(library.ids()) >= 5
    for template in library.all():
        variables = template.sample_variables(seed=1, index=3)
        system, user = template.render(variables)
        assert user and "{{" not in user
        assert system is None or "{{" not in system


def test_sampling_is_reproducible_per_record() -> None:
    template = parse_template(TEMPLATE, source="test")
    first = [template.sample_variables(7, i) for i in range(50)]
    again = [template.sample_variables(7, i) for i in reversed(range(50))][::-1]
    assert first == again
    other_seed = [template.sample_variables(8, i) for i in range(50)]
    assert first != other_seed


def test_sampled_values_respect_their_definitions() -> None:
    template = parse_template(TEMPLATE, source="test")
    samples = [template.sample_variables(0, i) for i in range(400)]
    assert {s["topic"] for s in samples} == {"cats", "dogs", "birds"}
    assert {s["rating"] for s in samples} == {1, 5}
    assert all(10 <= s["words"] <= 20 and isinstance(s["words"], int) for s in samples)
    assert all(s["mood"] == ("happy" if s["rating"] == 5 else "sad") for s in samples)
    fives = sum(s["rating"] == 5 for s in samples)
    assert 0.65 < fives / len(samples) < 0.85  # weight 3 of 4


def test_only_plain_numbers_and_truth_values_are_read_as_such() -> None:
    # YAML 1.1 read a zip code as octal, a time as base 60 and Norway's code as false.
    kept = ["02134", "12:30", "NO", "yes", "0x1F", "1_000", "inf", "nan", "1e999", "+3", ".5"]
    read = {"4": 4, "-2.5": -2.5, "1e-05": 1e-05, "true": True, "False": False, "0": 0}
    variables: dict[str, object] = {
        f"k{i}": {"weights": {text: 1}} for i, text in enumerate([*kept, *read])
    }
    variables |= {f"e{i}": {"expr": text} for i, text in enumerate([*kept, *read])}
    template = parse_template(
        {"id": "scalars", "version": "1", "user": "x", "variables": variables}, source="test"
    )
    values = template.sample_variables(0, 0)
    for i, text in enumerate([*kept, *read]):
        expected = read.get(text, text)
        assert values[f"k{i}"] == expected and values[f"e{i}"] == expected, text
        assert type(values[f"k{i}"]) is type(expected), text


def test_overrides_fix_a_variable_and_leave_the_others() -> None:
    template = parse_template(TEMPLATE, source="test")
    free = template.sample_variables(3, 0)
    fixed = template.sample_variables(3, 0, {"topic": "fish"})
    assert fixed["topic"] == "fish"
    assert fixed["words"] == free["words"]


def test_unknown_variable_is_named() -> None:
    template = parse_template(TEMPLATE, source="test")
    with pytest.raises(TemplateError, match="no variable 'colour'"):
        template.sample_variables(0, 0, {"colour": "red"})


def test_unknown_template_lists_known_ones() -> None:
    with pytest.raises(TemplateNotFound, match="product-review"):
        TemplateLibrary.load().get("nope")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({**TEMPLATE, "user": "{{ topic "}, "user prompt"),
        ({**TEMPLATE, "variables": {"x": {"values": []}}}, "values must not be empty"),
        ({**TEMPLATE, "variables": {"x": {"values": [1], "range": [1, 2]}}}, "exactly one"),
        ({**TEMPLATE, "variables": {"x": {"range": [5, 1]}}}, "low <= high"),
        # Every record drew infinity.
        ({**TEMPLATE, "variables": {"x": {"range": [0, float("inf")]}}}, "finite"),
        ({**TEMPLATE, "variables": {"x": {"range": [-1.7e308, 1.7e308]}}}, "finite"),
        ({**TEMPLATE, "output": {"type": "json", "schema": {"type": "nope"}}}, "JSON Schema"),
        ({**TEMPLATE, "id": "Bad Id"}, "id"),
        ({"id": "x"}, "user"),
        # Compiling alone would defer a filter under an ``if`` to the render of such a record.
        (
            {**TEMPLATE, "user": "{% if rating == 5 %}{{ topic | shout }}{% endif %}"},
            "user prompt, line 1: no filter named 'shout'",
        ),
        ({**TEMPLATE, "system": "{{ topic is loud }}"}, "system prompt, line 1: no test named"),
    ],
)
def test_malformed_templates_are_refused(broken: dict[str, object], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(broken, source="t.yaml")


def test_a_render_over_its_bounds_is_a_template_error() -> None:
    """The sandbox bounds ``*`` and ``**`` in prompts as in recipes' expressions: a sequence
    of a trillion characters is refused, not allocated."""
    template = parse_template({**TEMPLATE, "user": "{{ topic * 10**12 }}"}, source="t.yaml")
    with pytest.raises(TemplateError, match="template 'demo': sequence too long"):
        template.render(template.sample_variables(seed=1, index=0))
    # Each piece within the bound, the whole past it: a prompt of a gigabyte, built in memory.
    loop = "{% for i in range(10000) %}{{ 'x' * 99999 }}{% endfor %}"
    grows = parse_template({**TEMPLATE, "user": loop}, source="t.yaml")
    with pytest.raises(TemplateError, match="render longer than 10,000,000 characters"):
        grows.render(grows.sample_variables(seed=1, index=0))
    # A printf field a gigabyte wide, in one operation (it hung a run); ordinary ones render.
    wide = parse_template({**TEMPLATE, "user": "{{ '%0999999999d' % 1 }}"}, source="t.yaml")
    with pytest.raises(TemplateError, match="template 'demo': format field too wide"):
        wide.render(wide.sample_variables(seed=1, index=0))
    fields = "{{ '%05d|%.2f|%-4s|' % (7, 3.14159, 'ab') }}{{ 7 % 3 }}"
    ordinary = parse_template({**TEMPLATE, "user": fields}, source="t.yaml")
    assert ordinary.render(ordinary.sample_variables(seed=1, index=0))[1] == ("00007|3.14|ab  |1")
    divides = parse_template({**TEMPLATE, "user": "{{ words / 0 }}"}, source="t.yaml")
    with pytest.raises(TemplateError, match="template 'demo': division by zero"):
        divides.render(divides.sample_variables(seed=1, index=0))


def test_two_user_files_with_one_id_are_refused_naming_both(tmp_path: Path) -> None:
    """The later file (a recipe here) replaced the earlier template without a word."""
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "a.yaml").write_text("id: mine\nuser: Say hello\n")
    (directory / "b.yml").write_text(
        "id: mine\ncolumns:\n  c: {type: category, values: [x]}\noutput: c\n"
    )
    with pytest.raises(TemplateError) as caught:
        TemplateLibrary.load(directory)
    assert str(caught.value) == (
        f"{directory / 'a.yaml'} and {directory / 'b.yml'} share the id 'mine'; give each its own"
    )


def test_template_files_and_user_directory(tmp_path: Path) -> None:
    directory = tmp_path / "templates"
    directory.mkdir()
    (directory / "mine.yaml").write_text(
        "id: mine\nuser: Say hello to {{ name }}\nvariables: {name: {value: Ada}}\n"
    )
    library = TemplateLibrary.load(directory)
    assert "mine" in library.ids() and "product-review" in library.ids()
    template = library.get("mine")
    assert template.render(template.sample_variables(0, 0)) == (None, "Say hello to Ada")
    (directory / "bad.yaml").write_text("id: [unclosed\n")
    with pytest.raises(TemplateError, match="not valid YAML"):
        load_template_file(directory / "bad.yaml")


def test_json_output_is_extracted_and_checked() -> None:
    template = TemplateLibrary.load().get("qa-pairs")
    text = 'Here you go:\n```json\n{"question": "What is 2+2?", "answer": "4"}\n```'
    assert template.parse_output(text) == {"question": "What is 2+2?", "answer": "4"}
    with pytest.raises(ValueError, match="schema violation"):
        template.parse_output('{"question": "Why is the sky blue?"}')
    with pytest.raises(ValueError, match="no JSON object"):
        template.parse_output("I cannot answer that.")
    assert extract_json_object('noise {"a": {"b": 1}} tail') == {"a": {"b": 1}}
    # A model's NaN or 1e999 was kept, and written out as NaN or Infinity: no JSON reader's
    refused = {
        '{"question": NaN, "answer": "4"}': "NaN is not a JSON number",
        '{"question": "q", "answer": 1e999}': "1e999 is too large",
    }
    for answer, error in refused.items():
        with pytest.raises(ValueError, match=error):
            template.parse_output(answer)


def test_record_seed_is_stable() -> None:
    assert record_seed(0, 0) == record_seed(0, 0)
    assert record_seed(0, 1) != record_seed(0, 0)
    assert 0 <= record_seed(123, 456) < 2**32


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ('{a: {values: ["\\ud800x"]}}', "variables.a.values.0: text is not valid Unicode"),
        ("{a: {value: " + "[" * 100 + "]" * 100 + "}}", "nested deeper than 80 levels"),
        ("{a: {value: " + "[" * 5000 + "}}", "nested too deep to read"),
        # 1 KB of nested aliases: a billion lists once expanded (a hang, not a refusal)
        (
            "{a: {values: &l9 [&l8 [&l7 [&l6 [&l5 [&l4 [&l3 [&l2 [&l1 [x,x,x],"
            + ",".join(",".join([f"*l{level}"] * 9) + "]" for level in range(1, 9))
            + "}}",
            "more than 200,000 lists and mappings once its YAML aliases are expanded",
        ),
        ("{a: {values: &a [x, *a]}}", "or an alias inside itself"),
    ],
)
def test_a_file_no_template_can_hold_is_refused_at_load(
    tmp_path: Path, variables: str, message: str
) -> None:
    # Each was a traceback later: a lone surrogate at every render and write, deep values
    # at serialisation, PyYAML's own RecursionError.
    path = tmp_path / "t.yaml"
    path.write_text(f'id: t\nversion: "1"\nuser: hi\nvariables: {variables}\n')
    with pytest.raises(TemplateError, match=re.escape(message)) as caught:
        load_template_file(path)
    assert "\n" not in caught.value.message


def test_an_expression_reads_only_variables_set_before_it() -> None:
    # A cycle, or a later variable, was "'b' is undefined" at the first render.
    variables = {"a": {"expr": "{{ b }}"}, "b": {"expr": "{{ a }}"}}
    with pytest.raises(TemplateError, match="variable 'a' reads 'b', which is not set before it"):
        parse_template({**TEMPLATE, "variables": variables}, source="t.yaml")
    ordered = {"b": {"values": ["x"]}, "a": {"expr": "{{ b }}!"}}
    template = parse_template({**TEMPLATE, "user": "{{ a }}", "variables": ordered}, source="t")
    assert template.sample_variables(0, 0)["a"] == "x!"


def test_catalogue_lookup_takes_ids_never_paths(tmp_path: Path) -> None:
    path = tmp_path / "server-file.yaml"
    path.write_text("id: server-file\nuser: hi\n", encoding="utf-8")
    library = TemplateLibrary.load()
    assert library.by_id("qa-pairs").id == "qa-pairs"
    for name in (str(path), str(tmp_path / "missing.yaml")):
        with pytest.raises(TemplateNotFound) as caught:
            library.by_id(name)
        assert "known:" in caught.value.message  # the same answer whether the file exists
    assert library.get(str(path)).id == "server-file"  # the CLI's lookup keeps paths


def test_yaml_errors_never_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("id: t\nuser: hi\npassword: hunter2: [\n", encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        load_template_file(path)
    message = caught.value.message
    assert "hunter2" not in message and "\n" not in message
    assert message.endswith("(line 3, column 18)")
    path.write_bytes(b"id: t\nuser: \xff\xfe\n")
    with pytest.raises(TemplateError, match="not UTF-8"):
        load_template_file(path)


def test_output_schemas_take_the_safe_path() -> None:
    unsafe = {**TEMPLATE, "output": {"type": "json", "schema": {"pattern": "(a)\\1"}}}
    with pytest.raises(TemplateError, match="RE2"):
        parse_template(unsafe, source="t.yaml")
    evil = {"properties": {"a": {"pattern": "^(a+)+$"}}}
    template = parse_template({**TEMPLATE, "output": {"type": "json", "schema": evil}}, source="t")
    with pytest.raises(ValueError, match="does not match"):
        template.parse_output('{"a": "' + "a" * 60 + '!"}')
    with pytest.raises(ValueError, match="nested too deeply"):
        template.parse_output('{"a": ' * 100_000)
    with pytest.raises(ValueError, match="Unicode"):
        parse_template(TEMPLATE | {"output": {"type": "json"}}, source="t").parse_output(
            '{"a": "\\ud800"}'
        )


@pytest.mark.parametrize(
    ("value", "whole", "wanted"),
    [
        (3, True, None),
        (3.0, True, None),  # JSON's 3.0 is the whole number 3
        (2.5, False, None),
        (2.5, True, "a whole number"),
        (float("nan"), False, "a number"),
        (float("inf"), False, "a number"),
        (True, False, "a number"),  # a bool is an int to Python, not to a user
        ("7", False, "a number"),
    ],
)
def test_what_a_fixed_number_must_be(value: object, whole: bool, wanted: str | None) -> None:
    assert wanted_number(value, whole=whole) == wanted


def test_a_templates_texts_are_compiled_once_per_process() -> None:
    """Compiling was most of a render (240 records/s for product-review; 11,700 compiled once)."""
    from textnlp.generation.jinja_sandbox import jinja_template

    template = TemplateLibrary.load().get("product-review")
    template.render(template.sample_variables(seed=1, index=0))
    before = jinja_template.cache_info()
    for index in range(1, 50):
        template.render(template.sample_variables(seed=1, index=index))
    after = jinja_template.cache_info()
    assert after.misses == before.misses and after.hits > before.hits
