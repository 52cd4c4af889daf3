"""Typed field readers for workflow YAML that collect problems instead of raising.

Every reader returns ``None`` (or a neutral value) when the field is absent or wrong and
records a :class:`Violation` in the shared :class:`Problems`, so one pass reports them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from .errors import Violation

E = TypeVar("E", bound=StrEnum)

STRUCTURE = "STRUCTURE"
WELL_FORMED = "well-formed definition"
VOCABULARY_RULE = "R6"
VOCABULARY = "Known vocabulary"
REFERENCE_RULE = "R15"
REFERENCES = "Referential integrity"


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
    return value


def reference(value: object, what: str, where: str, p: Problems) -> str | None:
    """A required reference to another element by name."""
    if value is None:
        p.structure(where, f"{where} names no {what}")
        return None
    if not isinstance(value, str) or not value.strip():
        p.structure(where, f"{where} must name its {what} with a non-blank string")
        return None
    return value


def optional_str(data: Mapping[Any, Any], key: str, where: str, p: Problems) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    p.structure(where, f"{where}: {key} must be a string, not {a_type(value)}")
    return None


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
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        p.structure(where, f"{where}: {key} must be a positive integer, not {value!r}")
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
        p.vocabulary(where, f"{where} has unknown {what} {value!r} (known: {known})")
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
    """A guardian's free-form settings: a mapping with string keys (absent means empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        p.structure(where, f"{where}: config must be a mapping, not {a_type(value)}")
        return {}
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        p.structure(where, f"{where}: config keys must be strings, not {bad[0]!r}")
    return {str(k): v for k, v in value.items()}
