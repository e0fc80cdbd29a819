"""Tests for the option reference generated from the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from pct.config.reference import render_reference
from pct.config.schema import OPTIONS

DOCS_FILE = Path(__file__).resolve().parent.parent.parent / "docs" / "options.md"


def test_docs_file_matches_schema():
    expected = render_reference()

    assert DOCS_FILE.read_text(encoding="utf-8") == expected, (
        "docs/options.md is out of date: run "
        "'.venv/bin/python -m pct.config.reference > docs/options.md'"
    )


@pytest.mark.parametrize("name", list(OPTIONS))
def test_reference_section_per_option(name: str):
    option = OPTIONS[name]
    label = f"{name}[n]" if option.indexed else name
    text = render_reference()
    section = text.split(f"## `{label}`\n", 1)[1].split("\n## ", 1)[0]

    assert option.description in section
    assert f"- Format: `{option.synopsis()}`" in section
    assert f"- Hot plug: {'yes' if option.hotplug else 'no'}" in section


def test_reference_ranges_defaults_and_keys():
    text = render_reference()

    assert "- Allowed: 1 to 8192" in text
    assert "- Allowed: at least 16\n- Default: `512`" in text
    assert "- Keys: `net0` to `net31`" in text
    assert "| `mtu` | integer | 64 to 65535 | no | Maximum transfer unit |" in text
    assert "- Removal with `pct set --delete`: rejected (the root file system cannot be removed)" in text
    assert "- Set with `pct set`: no, pct manages it" in text


def test_reference_escapes_pipes_in_tables():
    table_rows = [line for line in render_reference().splitlines() if line.startswith("| `")]

    assert table_rows
    for row in table_rows:
        assert row.replace("\\|", "").count("|") == 6
