"""Render the option reference (``docs/options.md``) from the option schema.

Run ``python -m pct.config.reference > docs/options.md`` after changing an
option; a unit test fails while the file and the schema disagree.
"""

from __future__ import annotations

from pct.config.propstring import PropFormat, PropKey, format_number
from pct.config.schema import OPTIONS, Option

_HEADER = """\
# Container options

This file is generated from the option schema (`src/pct/config/schema.py`)
by `python -m pct.config.reference`. Do not edit it by hand.

Each option is one `key: value` line in `etc/pve/lxc/<vmid>.conf` and the
option `--key value` of `pct create` and `pct set`. Booleans accept
`0/1`, `yes/no`, `on/off` and `true/false` and are written as `0` or `1`.
Property strings are `key=value` pairs separated by commas; where a key is
shown as `[key=]`, its `key=` prefix may be left out.

Hot plug says whether a change applies to a running container at once.
Other changes are kept in the `[pve:pending]` section until the next start.
"""


def render_reference() -> str:
    """Return the Markdown option reference: one section per option, in schema order."""
    sections = [_HEADER]
    sections.extend(_render_option(option) for option in OPTIONS.values())
    return "\n".join(sections)


def _render_option(option: Option) -> str:
    label = f"{option.name}[n]" if option.indexed else option.name
    lines = [f"## `{label}`", "", f"{option.description}.", ""]
    lines.append(f"- Format: `{option.synopsis()}`")
    if option.indexed:
        lines.append(f"- Keys: `{option.name}0` to `{option.name}{option.max_index}`")
    allowed = _allowed_values(option.type, option.enum, option.minimum, option.maximum)
    if allowed:
        lines.append(f"- Allowed: {allowed}")
    lines.append(f"- Default: {_default_text(option)}")
    lines.append(f"- Hot plug: {'yes' if option.hotplug else 'no'}")
    lines.append(f"- Set with `pct set`: {_settable_text(option)}")
    if option.delete_refusal:
        lines.append(f"- Removal with `pct set --delete`: rejected ({option.delete_refusal})")
    if option.format is not None:
        lines.append("")
        lines.extend(_render_format(option.format))
    lines.append("")
    return "\n".join(lines)


def _settable_text(option: Option) -> str:
    if option.settable:
        return "yes"
    return f"no ({option.set_refusal})" if option.set_refusal else "no, pct manages it"


def _render_format(fmt: PropFormat) -> list[str]:
    lines = ["| key | type | allowed | required | description |", "| --- | --- | --- | --- | --- |"]
    for name, spec in fmt.keys.items():
        key = f"`{name}` (default key)" if name == fmt.default_key else f"`{name}`"
        allowed = _allowed_values(spec.type, spec.choices, spec.minimum, spec.maximum)
        required = "yes" if spec.required else "no"
        lines.append(f"| {key} | {_type_text(spec)} | {_escape_cell(allowed)} | {required} | "
                     f"{_escape_cell(spec.description)} |")
    return lines


def _allowed_values(value_type: str, choices: tuple[str, ...], minimum: float | None,
                    maximum: float | None) -> str:
    """Describe an enum, a list's allowed items or a numeric range; empty when unrestricted."""
    if choices:
        return ", ".join(f"`{choice}`" for choice in choices)
    if value_type == "boolean":
        return "`0`, `1`"
    if minimum is not None and maximum is not None:
        return f"{format_number(minimum)} to {format_number(maximum)}"
    if minimum is not None:
        return f"at least {format_number(minimum)}"
    if maximum is not None:
        return f"at most {format_number(maximum)}"
    return ""


def _type_text(spec: PropKey) -> str:
    if spec.type == "list":
        return f"`;`-separated list, each a {spec.kind or 'value'}"
    if spec.type == "string" and spec.kind:
        return spec.kind
    return spec.type


def _default_text(option: Option) -> str:
    if option.default is None:
        return "none"
    return f"`{option.default}`"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":
    print(render_reference(), end="")
