"""Property-based tests: arbitrary config text and option values fail only with clear errors.

Parsing, building settings and validating options may reject input, but only
with ``ConfigError`` or ``ParameterError``, and every message is one line.
A ``ParameterError`` names the key it is about.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pct.config.format import format_config, parse_config
from pct.config.model import settings_from_config, validate_settings
from pct.config.schema import OPTIONS, validate_option
from pct.errors import ConfigError, ParameterError, PctError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"
CORPUS_TEXTS = [path.read_text(encoding="utf-8") for path in sorted(FIXTURES.glob("*.conf"))]
FUZZ_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every concrete key: plain options, and the lowest and highest key of indexed ones.
ALL_KEYS = sorted(
    key
    for name, option in OPTIONS.items()
    for key in ([f"{name}0", f"{name}{option.max_index}"] if option.indexed else [name])
)
# Text that looks like option values, so mutations reach the value checks.
VALUE_FRAGMENTS = [
    "", "0", "1", "-1", "16", "8192", "8193", "0.5", "1e3", "yes", "off", "host", "local:8",
    "local:100/vm-100-disk-0.raw", "/dev/null", "/srv/../etc", "/data", "mp=/data", "name=eth0",
    "bridge=vmbr0", "hwaddr=01:00:5E:00:00:01", "ip=dhcp", "ip=192.0.2.1/24", "ip6=auto",
    "size=8G", "size=-1", "mountoptions=noatime;exec", "nesting=1", "mount=nfs;;", "order=1",
    "up=-5", "a;b", "web prod", "Europe/Vienna", ",", "=", ";", "%", "%41", "#", "[", "]",
    "\t", "\u00e9", "\u2028", "\x00", "lxc.apparmor.profile", "[pve:pending]", "delete: memory",
]

text_fragment = st.one_of(st.sampled_from(VALUE_FRAGMENTS), st.text(max_size=12))
option_value = st.lists(text_fragment, max_size=5).map(",".join)


def assert_clear_error(error: PctError, key: str | None = None) -> None:
    """Check that an error message is one line and names the key of a ``ParameterError``."""
    message = str(error)
    assert message
    assert len(message.splitlines()) == 1
    if isinstance(error, ParameterError):
        assert error.key
        assert f" {error.key}: " in message
        if key is not None:
            assert error.key == key


@st.composite
def mutated_config(draw) -> str:
    """Draw a corpus file with some lines replaced, removed, duplicated or cut."""
    lines = draw(st.sampled_from(CORPUS_TEXTS)).split("\n")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        line = lines[position]
        action = draw(st.sampled_from(["value", "key", "cut", "drop", "copy", "insert"]))
        if action == "value" and ":" in line:
            lines[position] = f"{line.split(':', 1)[0]}: {draw(option_value)}"
        elif action == "key":
            lines[position] = f"{draw(st.sampled_from(ALL_KEYS))}: {draw(option_value)}"
        elif action == "cut":
            cut = draw(st.integers(min_value=0, max_value=len(line)))
            lines[position] = line[:cut] + draw(text_fragment) + line[cut + 1:]
        elif action == "drop":
            del lines[position]
            lines = lines or [""]
        elif action == "copy":
            lines.insert(position, line)
        else:
            lines.insert(position, draw(st.text(max_size=30)))
    return "\n".join(lines)


def check_config_text(text: str) -> None:
    try:
        cfg = parse_config(text, 100)
    except ConfigError as exc:
        assert_clear_error(exc)
        return
    try:
        settings_from_config(cfg, 100)
    except ParameterError as exc:
        assert_clear_error(exc)
    try:
        written = format_config(cfg)
    except ConfigError as exc:
        assert_clear_error(exc)
        return
    assert format_config(parse_config(written, 100)) == written


@FUZZ_SETTINGS
@given(mutated_config())
def test_mutated_corpus_fails_only_with_clear_errors(text: str):
    check_config_text(text)


@FUZZ_SETTINGS
@given(st.text(max_size=300))
def test_random_text_fails_only_with_clear_errors(text: str):
    check_config_text(text)


@FUZZ_SETTINGS
@given(st.sampled_from(ALL_KEYS), option_value)
def test_random_option_value_fails_only_with_clear_errors(key: str, value: str):
    try:
        normalised = validate_option(key, value, 100)
    except ParameterError as exc:
        assert_clear_error(exc, key)
        return
    assert validate_option(key, normalised, 100) == normalised


@FUZZ_SETTINGS
@given(st.dictionaries(st.sampled_from(ALL_KEYS), option_value, max_size=6))
def test_random_sections_fail_only_with_clear_errors(values: dict[str, str]):
    text = "".join(f"{key}: {value}\n" for key, value in values.items())
    try:
        cfg = parse_config(text, 100)
        validate_settings(cfg.main, 100)
    except (ConfigError, ParameterError) as exc:
        assert_clear_error(exc)
