"""The policy language: hostile and broken input first, then the semantics, then properties."""

from __future__ import annotations

import ast
import builtins
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chameleon_workflow.domain import policy
from chameleon_workflow.domain.enums import UowStatus
from chameleon_workflow.domain.errors import ConditionError
from chameleon_workflow.domain.policy import (
    MAX_DEPTH,
    MAX_SOURCE_LENGTH,
    RESERVED_METADATA,
    Condition,
    parse_condition,
)

# No example database: the suite must not write files into the repository.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check(text: str, env: Mapping[str, Any] | None = None) -> bool:
    return parse_condition(text).evaluate(env or {})


def parse_error(text: str) -> ConditionError:
    with pytest.raises(ConditionError) as caught:
        parse_condition(text)
    return caught.value


# --- parse errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_condition_is_refused(text: str) -> None:
    assert parse_error(text).message == "condition is empty"


@pytest.mark.parametrize("text", [None, 5, True, b"a == 1", ["a"]])
def test_non_string_condition_is_refused(text: Any) -> None:
    assert "must be a string" in parse_error(text).message


@pytest.mark.parametrize(
    ("text", "char", "position"),
    [
        ("a @ b", "@", 2),
        ("a == 1;", ";", 6),
        ("$x", "$", 0),
        ("a == ü", "ü", 5),
        ("a\xa0b", "\xa0", 1),
    ],
)
def test_unknown_character_is_named_with_its_position(text: str, char: str, position: int) -> None:
    error = parse_error(text)
    assert error.message == f"unknown character {char!r} at position {position}"
    assert error.position == position


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "(a == 1",
            "unexpected end of condition at position 7 (missing ')' for '(' at position 0)",
        ),
        ("a == 1)", "unexpected token ')' at position 6"),
        ("((a)", "unexpected end of condition at position 4 (missing ')' for '(' at position 0)"),
        (")", "unexpected token ')' at position 0"),
        ("()", "unexpected token ')' at position 1"),
        ("(a == 1))", "unexpected token ')' at position 8"),
    ],
)
def test_unbalanced_parentheses(text: str, message: str) -> None:
    assert parse_error(text).message == message


@pytest.mark.parametrize(
    ("text", "position"),
    [("a < b < c", 6), ("1 == 1 == 1", 7), ("a in b in c", 7), ("a < b not in c", 6)],
)
def test_chained_comparison_is_refused(text: str, position: int) -> None:
    error = parse_error(text)
    assert error.position == position
    assert error.message.endswith("(comparisons cannot be chained)")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a ==", "unexpected end of condition at position 4"),
        ("and", "unexpected token 'and' at position 0"),
        ("a and", "unexpected end of condition at position 5"),
        ("not", "unexpected end of condition at position 3"),
        ("a b", "unexpected token 'b' at position 2"),
        ("a not b", "unexpected token 'not' at position 2"),
        ("a = 1", "unknown character '=' at position 2"),
        ("a == not b", "unexpected token 'not' at position 5"),
        ("'abc", "unterminated string at position 0"),
        ('a == "x', "unterminated string at position 5"),
        ("'a\\nb'", "unknown escape '\\\\n' at position 2"),
        ("-a", "unexpected token 'a' at position 1 (unary minus applies only to number literals)"),
        ("--1", "unexpected token '-' at position 1 (unary minus applies only to number literals)"),
        ("a in [b]", "unexpected token 'b' at position 6 (list items must be literals)"),
        ("a in [[1]]", "unexpected token '[' at position 6 (list items must be literals)"),
        ("a in [1 2]", "unexpected token '2' at position 8 (expected ',' or ']')"),
        ("a in [1,]", "unexpected token ']' at position 8 (list items must be literals)"),
        ("a in [1", "unexpected end of condition at position 7 (expected ',' or ']')"),
    ],
)
def test_syntax_errors_name_the_offending_token(text: str, message: str) -> None:
    assert parse_error(text).message == message


def test_long_tokens_are_shortened_in_messages() -> None:
    message = parse_error("a " + "b" * 500).message
    assert message == f"unexpected token {'b' * 37 + '...'!r} at position 2"


def test_too_long_input_is_refused_before_tokenizing() -> None:
    fine = "a == " + "1" * (MAX_SOURCE_LENGTH - 5)
    assert parse_condition(fine).source == fine
    error = parse_error(fine + "1")
    assert error.message == f"condition is longer than {MAX_SOURCE_LENGTH} characters"
    # Longer than the cap: refused whatever it contains, even unknown characters.
    assert "longer than" in parse_error("@" * (MAX_SOURCE_LENGTH + 1)).message


@pytest.mark.parametrize(
    "text",
    [
        "(" * MAX_SOURCE_LENGTH,
        "(" * 2000 + "a" + ")" * 2000,
        "not " * 1000 + "a",
        "a == " + "(" * 1000 + "1" + ")" * 1000,
    ],
)
def test_too_deep_nesting_is_a_condition_error_not_a_recursion_error(text: str) -> None:
    assert "nested more than 64 levels deep" in parse_error(text).message


def test_ten_thousand_parentheses_are_a_condition_error() -> None:
    assert "longer than" in parse_error("(" * 10_000).message


def test_depth_cap_holds_even_without_the_length_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "MAX_SOURCE_LENGTH", 10**6)
    assert "nested more than" in parse_error("(" * 100_000 + "a" + ")" * 100_000).message
    assert "nested more than" in parse_error("not " * 100_000 + "a").message


def test_nesting_up_to_the_cap_is_fine() -> None:
    assert check("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH, {"a": 1}) is True
    assert check("not " * MAX_DEPTH + "a", {"a": 1}) is (MAX_DEPTH % 2 == 0)
    parse_error("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))


def test_long_flat_chains_are_not_nesting() -> None:
    text = " and ".join(["a"] * 600)
    assert len(text) <= MAX_SOURCE_LENGTH
    assert check(text, {"a": True}) is True


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("__import__('os')", "calls are not supported"),
        ("open('/etc/passwd')", "calls are not supported"),
        ("len(x) > 1", "calls are not supported"),
        ("x[0] == 1", "subscripts are not supported"),
        ("x['key']", "subscripts are not supported"),
        ("[1, 2][0]", "subscripts are not supported"),
        ("(a)(b)", "calls are not supported"),
        ("a.b", "attribute access is not supported"),
        ("().__class__", "attribute access is not supported"),
        ("x.__class__.__bases__", "attribute access is not supported"),
        ("lambda: 1", "unknown character ':'"),
        ("a if b else c", "unexpected token 'if'"),
        ("a + 1 > 2", "unknown character '+'"),
        ("a ** 2", "unknown character '*'"),
        ("f'{a}'", "unexpected token"),
    ],
)
def test_python_syntax_outside_the_language_is_refused(text: str, hint: str) -> None:
    assert hint in parse_error(text).message


# --- evaluation errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("a > 5", {}),  # missing name is null
        ("a > 5", {"a": None}),
        ("a < 3", {"a": "a"}),
        ("'a' < 3", {}),
        ("a >= 1", {"a": True}),  # bool is not a number for ordering
        ("true > false", {}),
        ("a <= b", {"a": [1], "b": [2]}),
        ("a > b", {"a": {}, "b": {}}),
        ("a in 5", {}),
        ("1 in 'abc'", {}),
        ("a in b", {"a": "x", "b": {"x": 1}}),
        ("a not in null", {}),
    ],
)
def test_incompatible_types_raise_condition_error_at_evaluation(
    text: str, env: dict[str, Any]
) -> None:
    condition = parse_condition(text)
    with pytest.raises(ConditionError) as caught:
        condition.evaluate(env)
    assert caught.value.message.startswith("cannot evaluate ")
    assert caught.value.position is not None


def test_type_error_message_names_types_and_position() -> None:
    with pytest.raises(ConditionError) as caught:
        check("x == 1 and amount > 10", {"x": 1, "amount": "12"})
    assert caught.value.message == (
        "cannot evaluate string > number at position 18: '>' orders only two numbers or two strings"
    )
    assert caught.value.position == 18


def test_non_json_env_values_are_refused() -> None:
    with pytest.raises(ConditionError, match="not a JSON value"):
        check("a == 1", {"a": object()})


def test_absurdly_nested_env_values_raise_condition_error() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ConditionError, match="nested too deeply"):
        check("a == b", {"a": deep, "b": deep[0]})


# --- semantics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("amount > 10000 and status == 'PENDING'", {"amount": 10001, "status": "PENDING"}, True),
        ("amount > 10000 and status == 'PENDING'", {"amount": 10000, "status": "PENDING"}, False),
        ("approval_status in ['approved', 'ok']", {"approval_status": "ok"}, True),
        ("approval_status not in ['approved', 'ok']", {"approval_status": "no"}, True),
        ('not (risk == "high" or score < 0.5)', {"risk": "low", "score": 0.7}, True),
        ('not (risk == "high" or score < 0.5)', {"risk": "low", "score": 0.2}, False),
        (
            "child_count == finished_child_count",
            {"child_count": 3, "finished_child_count": 3},
            True,
        ),
        # not > and > or
        ("a or b and c", {"a": True, "b": False, "c": False}, True),
        ("(a or b) and c", {"a": True, "b": False, "c": False}, False),
        ("not a and b", {"a": False, "b": True}, True),
        ("not a or b", {"a": True, "b": False}, False),
        ("not (a or b)", {"a": False, "b": True}, False),
        ("not not a", {"a": 1}, True),
        # comparison binds tighter than not
        ("not a == 1", {"a": 2}, True),
        ("not a == 1", {"a": 1}, False),
        ("a == 1 or b == 2 and c == 3", {"a": 1, "b": 0, "c": 0}, True),
        # short-circuit guards a comparison that would fail
        ("a != null and a > 5", {}, False),
        ("a == null or a > 5", {}, True),
    ],
)
def test_evaluation(text: str, env: dict[str, Any], expected: bool) -> None:
    assert check(text, env) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 == 1.0", True),
        ("2 > 1.5", True),
        ("-1 < 0", True),
        ("- 2.5 == -2.5", True),
        ("1e3 == 1000", True),
        ("1.5E-1 == 0.15", True),
        ("'b' > 'a'", True),
        ("'abc' <= 'abd'", True),
        ("1 != '1'", True),
        ("true == 1", False),  # JSON equality: a boolean is not a number
        ("false != 0", True),
        ("1 in [true]", False),
        ("true in [true, 1]", True),
        ("null == None", True),
        ("True == true and False == false", True),
        ("[1, 'a'] == [1, 'a']", True),
        ("[] == []", True),
        ("'ell' in 'hello'", True),
        ("'x' not in 'hello'", True),
        ("1 in [1.0, 2]", True),
        ("'it\\'s' == \"it's\"", True),
        ("'a\\\\b' == \"a\\\\b\"", True),
        ('"say \\"hi\\"" == \'say "hi"\'', True),
        ("007 == 7", True),
    ],
)
def test_literals_and_comparisons(text: str, expected: bool) -> None:
    assert check(text) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), (0, False), (0.0, False), ("", False), ([], False), ({}, False)]
    + [(True, True), (1, True), (-0.5, True), ("x", True), ([0], True), ({"k": 0}, True)],
)
def test_bare_name_is_truthy_tested(value: Any, expected: bool) -> None:
    assert check("flag", {"flag": value}) is expected
    assert check("not flag", {"flag": value}) is (not expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", False), ("1", True), ("''", False), ("'x'", True), ("null", False), ("[]", False)]
    + [("[0]", True), ("true", True), ("False", False)],
)
def test_bare_literal_is_truthy_tested(text: str, expected: bool) -> None:
    assert check(text) is expected


def test_missing_names_are_null() -> None:
    assert check("a == null") is True
    assert check("a") is False
    assert check("a == b") is True


def test_env_lists_and_objects_compare_by_value() -> None:
    env = {"tags": ["x", 1], "meta": {"k": [1, True]}, "other": {"k": [1, 1]}}
    assert check("tags == ['x', 1]", env) is True
    assert check("'x' in tags", env) is True
    assert check("meta == other", env) is False
    assert check("meta == meta", env) is True


def test_string_subclasses_such_as_str_enums_work() -> None:
    assert check("status == 'PENDING'", {"status": UowStatus.PENDING}) is True
    assert check("status in ['ACTIVE', 'PENDING']", {"status": UowStatus.PENDING}) is True


def test_names_lists_every_identifier_once() -> None:
    condition = parse_condition("a == b or not (c in [1, 'd']) and a > e_1 and true")
    assert condition.names == frozenset({"a", "b", "c", "e_1"})
    assert parse_condition("1 == 1").names == frozenset()


def test_keywords_are_not_names() -> None:
    text = "x in [null] or not y and true != false"
    assert parse_condition(text).names == frozenset({"x", "y"})


def test_metadata_names() -> None:
    assert RESERVED_METADATA == frozenset(
        {"uow_id", "status", "parent_id", "child_count", "finished_child_count"}
    )
    condition = parse_condition(
        "child_count == finished_child_count and status == 'ACTIVE' and parent_id != null"
    )
    assert condition.names <= RESERVED_METADATA
    assert condition.evaluate(
        {"child_count": 2, "finished_child_count": 2, "status": "ACTIVE", "parent_id": "p-1"}
    )


def test_condition_is_a_value() -> None:
    condition = parse_condition("a == 1")
    assert isinstance(condition, Condition)
    assert condition == parse_condition("a == 1")
    assert hash(condition) == hash(parse_condition("a == 1"))
    assert condition.source == "a == 1"
    assert "a == 1" in repr(condition)


def test_whitespace_and_newlines_are_insignificant() -> None:
    assert check("\n  a\t==\r\n1\n  and\nb   not   in   [2]  ", {"a": 1, "b": 3}) is True


# --- nothing is executed --------------------------------------------------------------------


class RecordingEnv(Mapping[str, Any]):
    """An env that records which keys were read and offers nothing but a mapping."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_names_resolve_only_in_the_env() -> None:
    env = RecordingEnv({"a": 1})
    for text in ("__builtins__", "__import__", "__class__", "os", "eval", "open", "a"):
        assert parse_condition(text).evaluate(env) is (text == "a")
    # Every name was asked of the env and nothing else; the missing ones are null, not builtins.
    assert env.read == ["__builtins__", "__import__", "__class__", "os", "eval", "open", "a"]


ATTACKS = [
    "__import__('os').system('touch {marker}')",
    '__import__("os").system("touch {marker}") or true',
    "open('{marker}', 'w').write('x')",
    "exec(\"open('{marker}', 'w')\")",
    "eval('1')",
    "compile('1', 'f', 'eval')",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "[].__class__.__mro__",
    "x.__dict__",
    "getattr(x, '__class__')",
    "a == 1 and __import__('os').system('touch {marker}')",
    "not (__import__('subprocess').run(['touch', '{marker}']))",
    "{{}}.__class__",
    "'{marker}'.__class__",
    "lambda: open('{marker}', 'w')",
    "[x for x in ().__class__.__bases__]",
    "a; import os",
    "__builtins__['eval']('1')",
]


def test_attacks_are_parse_errors_and_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    calls: list[str] = []

    def forbidden(name: str) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called")

        return spy

    for name in ("eval", "exec", "compile", "open", "getattr"):
        monkeypatch.setattr(builtins, name, forbidden(name))
    for template in ATTACKS:
        text = template.format(marker=marker)
        try:
            parse_condition(text).evaluate({"x": 1, "a": 1})
        except ConditionError:
            pass
        else:
            raise AssertionError(f"{text!r} was accepted")
    monkeypatch.undo()
    assert calls == []
    assert not marker.exists()


def test_the_module_never_reaches_for_dynamic_execution() -> None:
    tree = ast.parse(inspect.getsource(policy))
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    builtins_called = {func.id for func in calls if isinstance(func, ast.Name)}
    methods_called = {func.attr for func in calls if isinstance(func, ast.Attribute)}
    banned = {"eval", "exec", "compile", "getattr", "setattr", "__import__", "open", "vars"}
    assert not builtins_called & banned
    assert not methods_called & {"literal_eval", "import_module", "system", "__getattribute__"}
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    allowed = {"__future__", "collections.abc", "dataclasses", "operator", "re", "typing", "errors"}
    assert imported <= allowed


# --- properties -----------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [" ", "a", "b_1", "status", "1", "2.5", "-", "'x'", '"y"', "'", '"', "\\", "(", ")"]
    + ["[", "]", ",", ".", "==", "!=", "<", "<=", ">", ">=", "=", "!", " and ", " or "]
    + [" not ", " in ", "true", "null", "None", "@", "__import__", "e", "\n"]
)


@PROPERTY
@given(st.text(max_size=300) | st.lists(FRAGMENTS, max_size=40).map("".join))
def test_any_text_parses_or_raises_condition_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        assert error.message
        assert error.position is None or 0 <= error.position <= len(text)
        return
    assert condition.source == text
    try:
        assert type(condition.evaluate({})) is bool
    except ConditionError as error:
        assert error.message.startswith("cannot evaluate ")


NAMES = ["a", "b", "status", "child_count", "missing"]


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


SCALARS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=8).map(quote),
    st.sampled_from(["true", "false", "null", "True", "False", "None"]),
)
OPERANDS = st.one_of(
    st.sampled_from(NAMES),
    SCALARS,
    st.lists(SCALARS, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
)
OPERATORS = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"])


def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("({}) and ({})".format, inner, inner),
        st.builds("{} or {}".format, inner, inner),
        st.builds("not {}".format, inner),
        st.builds("({})".format, inner),
        st.builds("({}) {} ({})".format, inner, OPERATORS, inner),
    )


EXPRESSIONS = st.recursive(
    OPERANDS | st.builds("{} {} {}".format, OPERANDS, OPERATORS, OPERANDS), extend, max_leaves=12
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
ENVS = st.dictionaries(st.sampled_from(NAMES), JSON)


@PROPERTY
@given(EXPRESSIONS, ENVS)
def test_grammar_expressions_parse_and_evaluate_to_bool_or_condition_error(
    text: str, env: dict[str, Any]
) -> None:
    condition = parse_condition(text)
    assert condition.names <= set(NAMES)
    try:
        result = condition.evaluate(env)
    except ConditionError as error:
        assert error.message.startswith("cannot evaluate ")
        return
    assert type(result) is bool


@PROPERTY
@given(EXPRESSIONS, EXPRESSIONS, ENVS)
def test_boolean_operators_behave_as_boolean_algebra(
    left: str, right: str, env: dict[str, Any]
) -> None:
    try:
        p, q = check(left, env), check(right, env)
    except ConditionError:
        return
    assert check(f"not ({left})", env) is (not p)
    assert check(f"({left}) and ({right})", env) is (p and q)
    assert check(f"({left}) or ({right})", env) is (p or q)
    assert check(f"not ({left}) and ({right})", env) is ((not p) and q)  # not binds tighter


@PROPERTY
@given(st.text(max_size=50))
def test_string_literals_round_trip(text: str) -> None:
    assert check(f"s == {quote(text)}", {"s": text}) is True
    double = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert check(f"s == {double}", {"s": text}) is True


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**30), 10**30))
def test_number_literals_round_trip(number: int | float) -> None:
    assert check(f"n == {number!r}", {"n": number}) is True
