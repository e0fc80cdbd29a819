"""Property strings (``key=value,key=value``), scalar value checks and sizes.

A property string format is declared as data: one ``PropKey`` per key, in the
canonical order used when the string is written back. A format may name a
default key whose ``key=`` prefix can be left out (``local:8,mp=/data`` means
``volume=local:8,mp=/data``).

Every check raises ``PropertyValueError`` with a reason phrased for the user;
the schema wraps it into a ``ParameterError`` that names the option and the
container.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
BOOLEAN_WORDS = {
    "1": "1", "yes": "1", "on": "1", "true": "1",
    "0": "0", "no": "0", "off": "0", "false": "0",
}
VALUE_TYPES = ("string", "boolean", "integer", "number", "enum", "size", "list")

_INTEGER_RE = re.compile(r"[+-]?\d+")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)([KMGT]?)", re.IGNORECASE)


# Control characters and the characters that str.splitlines() treats as line breaks.
_UNPRINTABLE_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class PropertyValueError(ValueError):
    """A value that fails its check. ``reason`` is the text shown to the user, always one line."""

    def __init__(self, reason: str):
        reason = one_line(reason)
        super().__init__(reason)
        self.reason = reason


def one_line(text: str) -> str:
    """Escape control characters and line breaks in *text* (``\\n``, ``\\x00``) so that an error stays one line."""
    return _UNPRINTABLE_RE.sub(lambda match: repr(match.group(0))[1:-1], text)


@dataclass(frozen=True)
class PropKey:
    """One key of a property string: its type, limits and help text.

    ``choices`` lists the allowed values of an ``enum``, or the allowed items
    of a ``list`` (items separated by ``;``). ``check`` validates a ``string``
    (or each ``list`` item) and returns the normalised text; ``kind`` names
    the expected kind of value in error messages.
    """

    type: str = "string"
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    description: str = ""
    check: Callable[[str], str] | None = None
    kind: str = ""

    def __post_init__(self) -> None:
        if self.type not in VALUE_TYPES:
            raise ValueError(f"unknown value type '{self.type}'")


@dataclass(frozen=True)
class PropFormat:
    """A property string format: keys in canonical order and the default key.

    ``bare_default_key`` is True when the default key is written without its
    ``key=`` prefix.
    """

    keys: dict[str, PropKey] = field(default_factory=dict)
    default_key: str | None = None
    bare_default_key: bool = True

    def summary(self) -> str:
        """Return a one-line synopsis such as ``[volume=]<volume>[,size=<size>]``."""
        parts: list[str] = []
        for name, spec in self.keys.items():
            hint = f"<{_type_hint(spec)}>"
            text = f"[{name}=]{hint}" if name == self.default_key else f"{name}={hint}"
            separator = "," if parts else ""
            optional = not spec.required and name != self.default_key
            parts.append(f"[{separator}{text}]" if optional else f"{separator}{text}")
        return "".join(parts)


def check_value(spec: PropKey, value: str) -> str:
    """Validate one scalar *value* against *spec* and return its normalised text."""
    if spec.type == "boolean":
        return _check_boolean(value)
    if spec.type == "integer":
        return _check_range(spec, _parse_integer(value), value)
    if spec.type == "number":
        return _check_range(spec, _parse_number(value), value)
    if spec.type == "enum":
        return _check_enum(spec, value)
    if spec.type == "size":
        return format_size(_check_size(spec, value))
    if spec.type == "list":
        return ";".join(_check_list_item(spec, item) for item in _split_list(value))
    return _check_string(spec, value)


def parse_propstring(text: str, fmt: PropFormat) -> dict[str, str]:
    """Parse *text* into normalised values, in the canonical key order of *fmt*.

    Raises ``PropertyValueError`` with an ``invalid format - ...`` reason.
    """
    # Limitation: values cannot be quoted, so no value may contain ',' (Proxmox
    # VE accepts "..." quoting for a few string keys).
    raw: dict[str, str] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, value = _split_part(part, fmt)
        if key in raw:
            raise PropertyValueError(
                f"invalid format - duplicate key in comma-separated list property: {key}"
            )
        if key not in fmt.keys:
            raise PropertyValueError(f"invalid format - unknown key '{key}'")
        raw[key] = value

    values: dict[str, str] = {}
    for key, spec in fmt.keys.items():
        if key not in raw:
            if spec.required:
                raise PropertyValueError(f"invalid format - missing required key '{key}'")
            continue
        values[key] = _check_key_value(key, spec, raw[key])
    return values


def format_propstring(values: dict[str, str], fmt: PropFormat) -> str:
    """Write *values* as a property string in the canonical key order of *fmt*.

    Raises ``ValueError`` for a key the format does not declare, or a value
    that cannot be written (it contains ``,`` or a newline).
    """
    unknown = [key for key in values if key not in fmt.keys]
    if unknown:
        raise ValueError(f"unknown key '{unknown[0]}' in property string")

    parts = []
    for key in fmt.keys:
        if key not in values or values[key] is None:
            continue
        value = str(values[key])
        if "," in value or "\n" in value:
            raise ValueError(f"value of '{key}' cannot contain ',' or a newline: {value!r}")
        bare = key == fmt.default_key and fmt.bare_default_key and "=" not in value
        parts.append(value if bare else f"{key}={value}")
    return ",".join(parts)


def parse_size(text: str) -> int:
    """Return the number of bytes in *text*: a number with an optional binary unit.

    ``8G`` is 8 GiB; a bare number is bytes; fractions are allowed (``1.5G``)
    and rounded down to whole bytes.
    """
    match = _SIZE_RE.fullmatch(text.strip())
    if not match:
        raise PropertyValueError(
            f"value '{text}' does not look like a valid size (a number with optional unit K, M, G or T)"
        )
    number, unit = match.groups()
    factor = SIZE_UNITS[unit.upper()] if unit else 1
    if "." in number:
        whole, fraction = number.split(".")
        return int(whole) * factor + int(fraction) * factor // 10 ** len(fraction)
    return int(number) * factor


def format_size(size: int) -> str:
    """Write *size* bytes with the largest unit that divides it exactly (``8G``)."""
    if size < 0:
        raise ValueError(f"negative size {size}")
    for unit in ("T", "G", "M", "K"):
        factor = SIZE_UNITS[unit]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def format_number(number: float) -> str:
    """Write *number* without a trailing ``.0`` (``2``, ``0.5``)."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))


def _split_part(part: str, fmt: PropFormat) -> tuple[str, str]:
    if "=" in part:
        key, value = part.split("=", 1)
        return key.strip(), value.strip()
    if fmt.default_key is None:
        raise PropertyValueError(f"invalid format - value '{part}' has no key (expected key=value)")
    return fmt.default_key, part


def _check_key_value(key: str, spec: PropKey, value: str) -> str:
    if value == "":
        raise PropertyValueError(f"invalid format - {key}: value is empty")
    try:
        return check_value(spec, value)
    except PropertyValueError as exc:
        raise PropertyValueError(f"invalid format - {key}: {exc.reason}") from None


def _check_boolean(value: str) -> str:
    normalised = BOOLEAN_WORDS.get(value.strip().lower())
    if normalised is None:
        raise PropertyValueError(
            f"value '{value}' is not a valid boolean (use 0/1, yes/no, on/off or true/false)"
        )
    return normalised


def _parse_integer(value: str) -> int:
    if not _INTEGER_RE.fullmatch(value.strip()):
        raise PropertyValueError(f"value '{value}' is not an integer")
    return int(value)


def _parse_number(value: str) -> float:
    if not _NUMBER_RE.fullmatch(value.strip()):
        raise PropertyValueError(f"value '{value}' is not a number")
    return float(value)


def _check_range(spec: PropKey, number: float, text: str) -> str:
    if spec.minimum is not None and number < spec.minimum:
        raise PropertyValueError(
            f"value '{text.strip()}' is below the minimum of {format_number(spec.minimum)}"
        )
    if spec.maximum is not None and number > spec.maximum:
        raise PropertyValueError(
            f"value '{text.strip()}' is above the maximum of {format_number(spec.maximum)}"
        )
    return format_number(number)


def _check_enum(spec: PropKey, value: str) -> str:
    if value not in spec.choices:
        raise PropertyValueError(f"value '{value}' is not one of: {', '.join(spec.choices)}")
    return value


def _check_size(spec: PropKey, value: str) -> int:
    size = parse_size(value)
    if spec.minimum is not None and size < spec.minimum:
        raise PropertyValueError(f"value '{value}' is below the minimum of {format_size(int(spec.minimum))}")
    if spec.maximum is not None and size > spec.maximum:
        raise PropertyValueError(f"value '{value}' is above the maximum of {format_size(int(spec.maximum))}")
    return size


def _check_string(spec: PropKey, value: str) -> str:
    if spec.check is None:
        return value
    try:
        return spec.check(value)
    except ValueError as exc:
        if isinstance(exc, PropertyValueError):
            raise
        kind = spec.kind or "value"
        raise PropertyValueError(f"value '{value}' does not look like a valid {kind}") from None


def _split_list(value: str) -> list[str]:
    items = [item.strip() for item in value.split(";")]
    if any(not item for item in items):
        raise PropertyValueError(f"value '{value}' contains an empty list item")
    return items


def _check_list_item(spec: PropKey, item: str) -> str:
    if spec.choices and item not in spec.choices:
        raise PropertyValueError(f"value '{item}' is not one of: {', '.join(spec.choices)}")
    return _check_string(spec, item)


def _type_hint(spec: PropKey) -> str:
    if spec.type == "enum":
        return "|".join(spec.choices)
    if spec.type == "boolean":
        return "1|0"
    if spec.type == "list":
        return ";".join(spec.choices[:2]) + ";..." if spec.choices else f"{spec.kind or 'item'};..."
    if spec.type in ("integer", "number") and spec.minimum is not None and spec.maximum is not None:
        return f"{format_number(spec.minimum)}-{format_number(spec.maximum)}"
    return spec.kind or spec.type
