"""Typed field readers for workflow YAML that collect problems instead of raising.

Every reader returns ``None`` (or a neutral value) when the field is absent or wrong and
records a :class:`Violation` in the shared :class:`Problems`, so one pass reports them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any, TypeGuard, TypeVar

from .errors import Violation
from .guardian_config import route_key

E = TypeVar("E", bound=StrEnum)

STRUCTURE = "STRUCTURE"
WELL_FORMED = "well-formed definition"
VOCABULARY_RULE = "R6"
VOCABULARY = "Known vocabulary"
REFERENCE_RULE = "R15"
REFERENCES = "Referential integrity"
# Governance numbers are stored in 32-bit integer columns.
MAX_INT = 2**31 - 1
# Names are identifiers people read and type; databases refuse NUL outright.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Problems:
    """An ordered collection of the violations found while reading a document."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def __bool__(self) -> bool:
        return bool(self.violations)

    def structure(self, element: str, message: str) -> None:
        self.violations.append(Violation(STRUCTURE, WELL_FORMED, element, message))

    def vocabulary(self, element: str, message: str) -> None:
        self.violations.append(Violation(VOCABULARY_RULE, VOCABULARY, element, message))

    def reference(self, element: str, message: str) -> None:
        self.violations.append(Violation(REFERENCE_RULE, REFERENCES, element, message))


def a_type(value: object) -> str:
    """A YAML-flavoured name of a value's type with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def check_keys(data: Mapping[Any, Any], known: Iterable[str], where: str, p: Problems) -> None:
    """Unknown keys are errors: a misspelt governance key must not be silently ignored."""
    allowed = list(known)
    for key in data:
        if key not in allowed:
            p.structure(where, f"{where} has unknown key {key!r} (known: {', '.join(allowed)})")


def aliased(data: Mapping[Any, Any], keys: tuple[str, ...], where: str, p: Problems) -> Any:
    """The value under the first present alias; differing values under two aliases are an error."""
    present = [k for k in keys if k in data]
    values = [data[k] for k in present]
    if any(v != values[0] for v in values[1:]):
        p.structure(where, f"{where} gives different values for {' and '.join(present)}")
    return values[0] if values else None


def usable_name(value: object) -> TypeGuard[str]:
    """A name is a non-blank string without control characters."""
    return isinstance(value, str) and bool(value.strip()) and not _CONTROL.search(value)


def name_of(
    data: Mapping[Any, Any], where: str, p: Problems, *, required: bool = True
) -> str | None:
    """A non-blank string name (kept verbatim, not stripped)."""
    value = data.get("name")
    if value is None:
        if required:
            p.structure(where, f"{where} has no name")
        return None
    if not isinstance(value, str):
        p.structure(where, f"{where} has {a_type(value)} as its name; a string is required")
        return None
    if not value.strip():
        p.structure(where, f"{where} has a blank name")
        return None
    if _CONTROL.search(value):
        p.structure(where, f"{where} has a name with control characters: {value!r}")
        return None
    return value


def unknown_fix(kind: str, name: str, known: Iterable[str]) -> str:
    """How to fix a reference to an unknown element: define it, or name an existing one."""
    names = ", ".join(f"'{k}'" for k in known)
    existing = f", or name one of {names}" if names else ""
    return f"add a {kind} named '{name}'{existing}"


def reference(value: object, what: str, where: str, p: Problems) -> str | None:
    """A required reference to another element by name."""
    if value is None:
        p.structure(where, f"{where} names no {what}")
        return None
    if not usable_name(value):
        p.structure(where, f"{where} must name its {what} with a non-blank string")
        return None
    return value


def optional_str(data: Mapping[Any, Any], key: str, where: str, p: Problems) -> str | None:
    value = data.get(key)
    if not isinstance(value, str):
        if value is not None:
            p.structure(where, f"{where}: {key} must be a string, not {a_type(value)}")
        return None
    if "\x00" in value:
        p.structure(where, f"{where}: {key} must not contain a NUL character")
        return None
    return value


def version_str(value: object, where: str, p: Problems) -> str | None:
    """Authors write ``version: 1``, ``1.0`` or ``"1.0-beta"``; all are kept as text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        p.structure(where, f"{where}: version must be a number or a string, not {a_type(value)}")
        return None
    return str(value)


def positive_int(data: Mapping[Any, Any], key: str, where: str, p: Problems) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT:
        shown = f"{value!r}"[:40]
        p.structure(
            where, f"{where}: {key} must be a positive integer up to {MAX_INT}, not {shown}"
        )
        return None
    return value


def enum_value(
    value: object, enum: type[E], what: str, where: str, p: Problems, *, lower: bool = False
) -> E | None:
    """Enum words are matched case-insensitively; unknown words are vocabulary problems."""
    if value is None:
        return None
    if not isinstance(value, str):
        p.structure(where, f"{where}: {what} must be a string, not {a_type(value)}")
        return None
    word = value.strip().lower() if lower else value.strip().upper()
    try:
        return enum(word)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        p.vocabulary(
            where, f"{where} has unknown {what} {value!r} (known: {known}); write one of those"
        )
        return None


def mapping_list(value: object, section: str, p: Problems) -> list[tuple[str, Mapping[Any, Any]]]:
    """The mapping elements of a list section, each with a positional label for messages."""
    if not isinstance(value, list):
        p.structure(section, f"{section} must be a list, not {a_type(value)}")
        return []
    items: list[tuple[str, Mapping[Any, Any]]] = []
    for index, item in enumerate(value):
        label = f"{section}[{index}]"
        if isinstance(item, Mapping):
            items.append((label, item))
        else:
            p.structure(label, f"{label} must be a mapping, not {a_type(item)}")
    return items


def config_of(value: object, where: str, p: Problems) -> dict[str, Any]:
    """A guardian's free-form settings: a JSON-compatible mapping (absent means empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        p.structure(where, f"{where}: config must be a mapping, not {a_type(value)}")
        return {}
    config = free_form(value, "config", where, p)
    return config if isinstance(config, dict) else {}


def free_form(value: object, key: str, where: str, p: Problems) -> Any:
    """A free-form value (ai_context, schema_json, config) as JSON-compatible data.

    Dates become ISO-8601 text and scalar keys become text, as a JSON store would keep
    them; cycles (YAML anchors), deep nesting and other types (binary, sets) are problems.
    """
    try:
        return _jsonable(value, 0, frozenset())
    except _NotJson as exc:
        p.structure(where, f"{where}: {key} {exc}")
        return None


MAX_FREE_FORM_DEPTH = 100


class _NotJson(Exception):
    pass


def _jsonable(value: object, depth: int, path: frozenset[int]) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise _NotJson(f"holds text with a NUL character: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _NotJson(f"holds {value!r}, which JSON cannot represent")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, Mapping | list):
        raise _NotJson(f"holds {a_type(value)}, which JSON cannot represent")
    if id(value) in path:
        raise _NotJson("refers to itself (a cycle of YAML anchors)")
    if depth >= MAX_FREE_FORM_DEPTH:
        raise _NotJson(f"is nested more than {MAX_FREE_FORM_DEPTH} levels deep")
    inner = path | {id(value)}
    if isinstance(value, list):
        return [_jsonable(item, depth + 1, inner) for item in value]
    result: dict[str, Any] = {}
    for raw_key, item in value.items():
        text = _key_text(raw_key)
        if text in result:
            raise _NotJson(f"has two keys that both read {text!r}")
        result[text] = _jsonable(item, depth + 1, inner)
    return result


def _key_text(key: object) -> str:
    if isinstance(key, str):
        if "\x00" in key:
            raise _NotJson(f"has a key with a NUL character: {key!r}")
        return key
    if isinstance(key, date):
        return key.isoformat()
    if key is None or isinstance(key, bool | int | float):
        return route_key(key)
    raise _NotJson(f"has {a_type(key)} as a key; keys must be text")
