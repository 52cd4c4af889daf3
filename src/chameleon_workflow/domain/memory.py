"""What a role memory may hold: the limits on keys, values and reasons (pure, no I/O)."""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidInput

MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 2_000  # reasoning, archive / restore / hold reasons
MAX_VALUE_BYTES = 64 * 1024  # the value as compact JSON (UTF-8)


def check_key(key: Any, what: str = "key") -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{what} must be a non-blank string of at most {MAX_KEY_LENGTH} characters",
            field=what,
        )
    return key


def check_value(value: Any, what: str = "value") -> Any:
    """The value must be plain JSON (no NaN or Infinity) of at most MAX_VALUE_BYTES."""
    try:
        encoded = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{what} must be a JSON value (NaN and Infinity are not JSON)", field=what
        ) from None
    size = len(encoded.encode())
    if size > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"{what} is {size} bytes as JSON; a memory value may be at most {MAX_VALUE_BYTES} "
            "bytes: store a reference (a URL or an id) to larger content instead",
            field=what,
        )
    return value


def check_reason(reason: Any, what: str = "reasoning", *, required: bool = True) -> str | None:
    """A reason: non-blank (when required), at most MAX_REASON_LENGTH characters."""
    if reason is None and not required:
        return None
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(f"{what} is required: say why (a non-blank string)", field=what)
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(
            f"{what} may be at most {MAX_REASON_LENGTH} characters (got {len(reason)})",
            field=what,
        )
    return reason
