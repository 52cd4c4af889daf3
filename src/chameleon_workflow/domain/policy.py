"""The policy language: conditions that gate and route work, e.g. ``amount > 10000``.

Conditions come from untrusted workflow YAML, so they are tokenized, parsed and
evaluated here by hand: nothing is ever handed to ``eval``/``exec``/``compile``, names
are only looked up in the environment mapping, and there is no syntax to call, import,
subscript or reach attributes. Source length and nesting depth are capped so that any
input fails with :class:`ConditionError` instead of exhausting the stack.

Grammar (keywords are lower case; ``True``/``False``/``None`` are accepted too)::

    condition  := or_expr END
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := operand [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand]
    operand    := NAME | literal | "[" [literal ("," literal)*] "]" | "(" or_expr ")"
    literal    := NUMBER | "-" NUMBER | STRING | "true" | "false" | "null"
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConditionError

RESERVED_METADATA: frozenset[str] = frozenset(
    {"uow_id", "status", "parent_id", "child_count", "finished_child_count"}
)

MAX_SOURCE_LENGTH = 4096
MAX_DEPTH = 64

_TOKEN_RE = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<op>==|!=|<=|>=|<|>|[()\[\],-])""",
    re.VERBOSE | re.ASCII | re.DOTALL,
)
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_KEYWORDS = frozenset({"and", "or", "not", "in"})
_CONSTANTS: dict[str, Any] = {
    "true": True, "True": True, "false": False, "False": False, "null": None, "None": None,
}  # fmt: skip
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
# Tokens that would start Python syntax we deliberately do not have.
_UNSUPPORTED = {"(": "calls are not supported", "[": "subscripts are not supported"}
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip
# JSON types in the order _kind must test them (bool before int: True is an int).
_JSON_KINDS = (
    (type(None), "null"), (bool, "boolean"), (int, "number"), (float, "number"),
    (str, "string"), (list, "list"), (dict, "object"),
)  # fmt: skip
_JSON_TYPES = tuple(python_type for python_type, _ in _JSON_KINDS)


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, constant, name, keyword, op or end
    text: str
    position: int
    value: Any = None


@dataclass(frozen=True)
class _Literal:
    value: Any  # list literals are kept as tuples so the tree stays immutable


@dataclass(frozen=True)
class _Name:
    name: str


@dataclass(frozen=True)
class _Not:
    operand: _Node


@dataclass(frozen=True)
class _BoolOp:
    op: str  # "and" or "or"
    operands: tuple[_Node, ...]


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Node
    right: _Node
    position: int


_Node = _Literal | _Name | _Not | _BoolOp | _Compare


def _unexpected(token: _Token, hint: str | None = None) -> ConditionError:
    """Build the error for a token the grammar does not allow here."""
    shown = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    what = "end of condition" if token.kind == "end" else f"token {shown!r}"
    suffix = f" ({hint})" if hint else ""
    return ConditionError(f"unexpected {what} at position {token.position}{suffix}", token.position)


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens ending with an ``end`` token; raise on unknown input."""
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            char = text[position]
            problem = "unterminated string" if char in "'\"" else f"unknown character {char!r}"
            hint = " (attribute access is not supported)" if char == "." else ""
            raise ConditionError(f"{problem} at position {position}{hint}", position)
        kind, lexeme = match.lastgroup or "", match.group()
        if kind != "space":
            tokens.append(_make_token(kind, lexeme, position))
        position = match.end()
    tokens.append(_Token("end", "", position))
    return tokens


def _make_token(kind: str, lexeme: str, position: int) -> _Token:
    """Classify one lexeme and decode its literal value, if it has one."""
    if kind == "number":
        try:
            value: Any = int(lexeme) if lexeme.isdigit() else float(lexeme)
        except ValueError:  # only when the interpreter caps digits below our length cap
            raise ConditionError(f"number too long at position {position}", position) from None
        return _Token(kind, lexeme, position, value)
    if kind == "string":
        return _Token(kind, lexeme, position, _unescape(lexeme, position))
    if kind == "name" and lexeme in _CONSTANTS:
        return _Token("constant", lexeme, position, _CONSTANTS[lexeme])
    if kind == "name" and lexeme in _KEYWORDS:
        return _Token("keyword", lexeme, position)
    return _Token(kind, lexeme, position)


def _unescape(lexeme: str, position: int) -> str:
    """Decode a quoted string; only the quotes and the backslash may be escaped."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in "\\'\"":
            at = position + 1 + match.start()
            raise ConditionError(f"unknown escape {match.group()!r} at position {at}", at)
        return match.group(1)

    return _ESCAPE_RE.sub(replace, lexeme[1:-1])


class _Parser:
    """Recursive descent over the token list; ``depth`` counts parentheses and ``not``."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self.names: set[str] = set()

    def parse(self) -> _Node:
        node = self._or(0)
        if self._peek().kind != "end":
            raise _unexpected(self._peek())
        return node

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _next(self) -> _Token:
        token = self._peek()
        self._index = min(self._index + 1, len(self._tokens) - 1)
        return token

    def _accept(self, kind: str, text: str) -> bool:
        """Consume the next token if it is ``text`` of ``kind``."""
        token = self._peek()
        if token.kind == kind and token.text == text:
            self._next()
            return True
        return False

    def _expect(self, text: str, hint: str) -> None:
        if not self._accept("op", text):
            raise _unexpected(self._peek(), hint)

    def _nest(self, depth: int, token: _Token) -> int:
        """Return ``depth + 1``, refusing conditions nested deeper than MAX_DEPTH."""
        if depth >= MAX_DEPTH:
            message = f"condition is nested more than {MAX_DEPTH} levels deep"
            raise ConditionError(f"{message} at position {token.position}", token.position)
        return depth + 1

    def _or(self, depth: int) -> _Node:
        return self._chain("or", self._and, depth)

    def _and(self, depth: int) -> _Node:
        return self._chain("and", self._not, depth)

    def _chain(self, op: str, operand: Callable[[int], _Node], depth: int) -> _Node:
        """Parse ``operand (op operand)*`` into one flat node, so long chains need no recursion."""
        operands = [operand(depth)]
        while self._accept("keyword", op):
            operands.append(operand(depth))
        return operands[0] if len(operands) == 1 else _BoolOp(op, tuple(operands))

    def _not(self, depth: int) -> _Node:
        token = self._peek()
        if token.kind == "keyword" and token.text == "not":
            self._next()
            return _Not(self._not(self._nest(depth, token)))
        return self._comparison(depth)

    def _comparison_operator(self) -> str | None:
        """Name the comparison operator at the cursor without consuming it, if any."""
        token, following = self._peek(), self._peek(1)
        if token.kind == "op" and token.text in _COMPARISONS:
            return token.text
        if token.kind == "keyword" and token.text == "in":
            return "in"
        if token.kind == "keyword" and token.text == "not" and following.text == "in":
            return "not in"
        return None

    def _comparison(self, depth: int) -> _Node:
        left = self._operand(depth)
        op = self._comparison_operator()
        if op is None:
            return left
        position = self._next().position
        if op == "not in":
            self._next()
        right = self._operand(depth)
        if self._comparison_operator() is not None:
            raise _unexpected(self._peek(), "comparisons cannot be chained")
        return _Compare(op, left, right, position)

    def _operand(self, depth: int) -> _Node:
        token = self._next()
        node: _Node
        if token.kind == "op" and token.text == "(":
            node = self._or(self._nest(depth, token))
            self._expect(")", f"missing ')' for '(' at position {token.position}")
        elif token.kind == "op" and token.text == "[":
            node = self._list()
        elif token.kind == "name":
            self.names.add(token.text)
            node = _Name(token.text)
        else:
            node = _Literal(self._literal(token))
        follower = self._peek()
        if follower.kind == "op" and follower.text in _UNSUPPORTED:
            raise _unexpected(follower, _UNSUPPORTED[follower.text])
        return node

    def _list(self) -> _Literal:
        items: list[Any] = []
        if not self._accept("op", "]"):
            items.append(self._literal(self._next(), "list items must be literals"))
            while not self._accept("op", "]"):
                self._expect(",", "expected ',' or ']'")
                items.append(self._literal(self._next(), "list items must be literals"))
        return _Literal(tuple(items))

    def _literal(self, token: _Token, hint: str | None = None) -> Any:
        if token.kind in ("number", "string", "constant"):
            return token.value
        if token.kind == "op" and token.text == "-":
            number = self._next()
            if number.kind != "number":
                raise _unexpected(number, "unary minus applies only to number literals")
            return -number.value
        raise _unexpected(token, hint)


def _kind(value: Any) -> str:
    """Name a value's JSON type for error messages."""
    names = (name for python_type, name in _JSON_KINDS if isinstance(value, python_type))
    return next(names, type(value).__name__)


def _equal(left: Any, right: Any) -> bool:
    """JSON equality: Python ``==`` except that a boolean never equals a number."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_equal, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def _compare(node: _Compare, left: Any, right: Any) -> bool:
    """Apply one comparison; incompatible operand types raise ConditionError."""
    if node.op in ("==", "!="):
        return _equal(left, right) == (node.op == "==")
    if node.op in ("in", "not in"):
        if isinstance(right, list):
            found = any(_equal(left, item) for item in right)
        elif isinstance(right, str) and isinstance(left, str):
            found = left in right
        else:
            raise _type_error(node, left, right, "needs a list, or strings on both sides")
        return found == (node.op == "in")
    # Only number-number or string-string; bool is deliberately not a number here.
    if {_kind(left), _kind(right)} not in ({"number"}, {"string"}):
        raise _type_error(node, left, right, "orders only two numbers or two strings")
    return bool(_ORDERINGS[node.op](left, right))


def _type_error(node: _Compare, left: Any, right: Any, rule: str) -> ConditionError:
    return ConditionError(
        f"cannot evaluate {_kind(left)} {node.op} {_kind(right)} at position {node.position}: "
        f"'{node.op}' {rule}",
        node.position,
    )


def _lookup(env: Mapping[str, Any], name: str) -> Any:
    """Resolve a name in ``env`` only (missing means null); non-JSON values are refused."""
    value = env.get(name)
    if not isinstance(value, _JSON_TYPES):
        raise ConditionError(f"name {name!r} holds a {type(value).__name__}, not a JSON value")
    return value


def _value(node: _Node, env: Mapping[str, Any]) -> Any:
    """Evaluate a tree node; ``and``/``or``/``not`` short-circuit and yield real bools."""
    if isinstance(node, _Literal):
        return list(node.value) if isinstance(node.value, tuple) else node.value
    if isinstance(node, _Name):
        return _lookup(env, node.name)
    if isinstance(node, _Not):
        return not _value(node.operand, env)
    if isinstance(node, _BoolOp):
        truths = (bool(_value(operand, env)) for operand in node.operands)
        return all(truths) if node.op == "and" else any(truths)
    return _compare(node, _value(node.left, env), _value(node.right, env))


@dataclass(frozen=True)
class Condition:
    """A parsed condition; build it with :func:`parse_condition`."""

    source: str
    names: frozenset[str]  # every identifier the condition refers to
    _tree: _Node = field(repr=False, compare=False)

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Return the condition's truth in ``env`` (JSON values); raise only ConditionError."""
        try:
            return bool(_value(self._tree, env))
        except RecursionError:  # only reachable through absurdly nested env values
            raise ConditionError("a value in the environment is nested too deeply") from None


def parse_condition(text: str) -> Condition:
    """Parse ``text`` into a :class:`Condition`; raise only ConditionError."""
    if not isinstance(text, str):
        raise ConditionError(f"condition must be a string, not {type(text).__name__}")
    if len(text) > MAX_SOURCE_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_SOURCE_LENGTH} characters")
    tokens = _tokenize(text)
    if tokens[0].kind == "end":
        raise ConditionError("condition is empty")
    parser = _Parser(tokens)
    tree = parser.parse()
    return Condition(text, frozenset(parser.names), tree)
