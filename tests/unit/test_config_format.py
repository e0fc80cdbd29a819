"""Tests for reading and writing container config files."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from pct.config import format as config_format
from pct.config.format import (
    ContainerConfig,
    Section,
    config_digest,
    format_config,
    load_config,
    parse_config,
    write_config,
)
from pct.errors import ConfigError
from pct.paths import Paths

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "configs"
CORPUS = sorted(FIXTURES.glob("*.conf"))
# Hand-written files use spellings that the writer normalises, so they round-trip by meaning only.
WRITTEN_CORPUS = [path for path in CORPUS if "-hand-" not in path.name]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path)


# --- corpus -----------------------------------------------------------------


def test_corpus_is_present():
    assert len(CORPUS) >= 30
    assert len(WRITTEN_CORPUS) < len(CORPUS)


@pytest.mark.parametrize("path", WRITTEN_CORPUS, ids=lambda path: path.name)
def test_corpus_round_trips_unchanged(path: Path):
    text = path.read_text(encoding="utf-8")

    assert format_config(parse_config(text, 100)) == text


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.name)
def test_corpus_parses_without_unexpected_warnings(path: Path):
    cfg = parse_config(path.read_text(encoding="utf-8"), 100)

    if path.name == "109-newer-version.conf":
        assert cfg.warnings == ["line 2: unknown key 'entrypoint' kept as it is"]
    else:
        assert cfg.warnings == []


def test_corpus_description_decoded():
    cfg = parse_config((FIXTURES / "101-description.conf").read_text(encoding="utf-8"))

    assert cfg.description == (
        "Web shop front end\n"
        "  nginx + php-fpm, owned by the web team\n"
        "\n"
        "Disk is 95% full: clean /var/log before growing it.\n"
        "Contact: café-ops@example.com"
    )
    assert "description" not in cfg.main


def test_corpus_snapshots_in_file_order():
    cfg = parse_config((FIXTURES / "102-snapshots.conf").read_text(encoding="utf-8"))

    assert list(cfg.snapshots) == ["before-upgrade", "after-upgrade"]
    assert cfg.main.get("parent") == "after-upgrade"
    assert cfg.snapshots["after-upgrade"].get("parent") == "before-upgrade"
    assert cfg.snapshots["before-upgrade"].get("snaptime") == "1700000000"
    assert cfg.snapshots["before-upgrade"].get("description") == "clean Debian 12 install"
    assert cfg.snapshots["after-upgrade"].get("description") == "after apt full-upgrade\nkernel headers installed"
    assert cfg.pending is None


def test_corpus_pending_section():
    cfg = parse_config((FIXTURES / "103-pending.conf").read_text(encoding="utf-8"))

    assert cfg.pending is not None
    assert cfg.pending.get("delete") == "nameserver,searchdomain"
    assert cfg.pending.get("hostname") == "db01"
    assert cfg.pending.get("description") == "database server, moving to the new VLAN"
    assert cfg.main.get("hostname") == "db"
    assert cfg.description == ""


def test_corpus_raw_lxc_keys_in_both_spellings():
    cfg = parse_config((FIXTURES / "130-hand-raw-equals.conf").read_text(encoding="utf-8"))

    assert cfg.main.raw_lxc() == [
        ("lxc.apparmor.profile", "unconfined"),
        ("lxc.cgroup2.devices.allow", "c 189:* rwm"),
        ("lxc.cgroup2.devices.allow", "c 10:229 rwm"),
        ("lxc.mount.entry", "/dev/bus/usb dev/bus/usb none bind,optional,create=dir 0 0"),
        ("lxc.cap.drop", ""),
        ("lxc.environment", "HTTP_PROXY=http://proxy.example.com:3128"),
    ]
    assert "lxc.apparmor.profile: unconfined\n" in format_config(cfg)


def test_corpus_hand_spelled_file_values():
    cfg = parse_config((FIXTURES / "131-hand-spelling.conf").read_text(encoding="utf-8"))

    assert cfg.description == (
        'Hand-edited file: no space after "#"\n'
        "  indented second line\n"
        "a comment in the middle of the section joins the description\n"
        "and a description key line"
    )
    assert cfg.main.get("hostname") == "hand"
    assert cfg.main.get("swap") == "512"
    assert cfg.pending.get("delete") == "tags"
    assert cfg.snapshots["first"].get("description") == "made by hand"


def test_corpus_long_description_decoded():
    cfg = parse_config((FIXTURES / "118-long-description.conf").read_text(encoding="utf-8"))
    lines = cfg.description.split("\n")

    assert lines[0] == "## Wiki server"
    assert lines[3] == "Status: 100% migrated, see ticket #4711"
    assert "日本語のメモ" in lines[4]
    assert lines[-2] == "# a line that starts with a hash"
    assert lines[-1] == "trailing percent sign: 100%"


def test_corpus_raw_lxc_keys_keep_order_and_repeats():
    cfg = parse_config((FIXTURES / "104-raw-lxc.conf").read_text(encoding="utf-8"))

    assert cfg.main.raw_lxc() == [
        ("lxc.apparmor.profile", "unconfined"),
        ("lxc.cgroup2.devices.allow", "c 10:200 rwm"),
        ("lxc.cgroup2.devices.allow", "c 226:* rwm"),
        ("lxc.cap.drop", ""),
        ("lxc.mount.entry", "/dev/net/tun dev/net/tun none bind,create=file 0 0"),
        ("lxc.mount.entry", "/srv/shared srv/shared none bind,optional,create=dir 0 0"),
        ("lxc.mount.auto", "proc:rw sys:rw"),
    ]
    assert "lxc.apparmor.profile" not in cfg.main.keys()


def test_corpus_full_file_sections():
    cfg = parse_config((FIXTURES / "108-full.conf").read_text(encoding="utf-8"))

    assert cfg.description == 'CI runner\nsee runbook "ci-runners"'
    assert cfg.pending.as_dict() == {"cores": "12", "delete": "cpulimit", "memory": "24576"}
    assert cfg.snapshots["nightly"].raw_lxc() == [("lxc.apparmor.profile", "unconfined")]
    assert cfg.main.raw_lxc() == [("lxc.apparmor.profile", "unconfined"), ("lxc.prlimit.nofile", "1048576")]


# --- byte-for-byte round trip of written files -------------------------------


def test_written_file_round_trips_byte_for_byte():
    main = Section([("arch", "amd64"), ("memory", "512"), ("lxc.mount.entry", "/a a none bind 0 0")])
    snapshot = Section([("description", "first\nsecond"), ("memory", "256"), ("snaptime", "1")])
    pending = Section([("delete", "swap"), ("cores", "2")])
    cfg = ContainerConfig(description="hello\n  indented\n\nend", main=main,
                          snapshots={"snap1": snapshot}, pending=pending)

    text = format_config(cfg)

    assert format_config(parse_config(text)) == text
    assert text == (
        "# hello\n#   indented\n#\n# end\n"
        "arch: amd64\nmemory: 512\nlxc.mount.entry: /a a none bind 0 0\n"
        "\n[pve:pending]\ndelete: swap\ncores: 2\n"
        "\n[snap1]\n# first\n# second\nmemory: 256\nsnaptime: 1\n"
    )


@pytest.mark.parametrize("description", [
    "percent 100% and %41",
    "tab\there",
    "carriage\rreturn",
    "vertical\x0btab and form\x0cfeed",
    "unicode line\u2028separator and next\x85line",
    "trailing spaces   ",
    "   leading spaces",
    "trailing newline\n",
    "\nleading newline",
    "ümlaut ✓",
    "null\x00byte",
])
def test_description_special_characters_round_trip(description: str):
    cfg = ContainerConfig(description=description, main=Section([("memory", "512")]))

    text = format_config(cfg)
    parsed = parse_config(text)

    assert parsed.description == description
    assert format_config(parsed) == text
    assert len(text.split("\n")) == description.count("\n") + 3


def test_description_control_characters_are_percent_encoded():
    cfg = ContainerConfig(description="a\tb%c ", main=Section([("memory", "512")]))

    assert format_config(cfg) == "# a%09b%25c%20\nmemory: 512\n"


def test_empty_pending_section_is_not_written():
    cfg = ContainerConfig(main=Section([("memory", "512")]), pending=Section())

    assert format_config(cfg) == "memory: 512\n"


def test_empty_config_formats_to_empty_text():
    assert format_config(ContainerConfig()) == ""
    assert parse_config("").main.entries == []


# --- hand-written files: semantic round trip ----------------------------------

HAND_WRITTEN = (
    "#first line\n"
    "#  second line   \n"
    "\n"
    "memory:1024\n"
    "lxc.foo = bar\n"
    "   \n"
    "lxc.cgroup2.devices.allow=c 1:3 rwm\n"
    "# a comment in the middle\n"
    "hostname:   www   \r\n"
    "lxc.foo: second\n"
    "\n"
    "[pve:pending]\n"
    "delete: swap,cores\n"
    "description: pending note\n"
    "\n"
    "[snap_1]\n"
    "description: snapshot note\n"
    "memory: 512\n"
    "snaptime: 1700000000\n"
)


def test_hand_written_file_values():
    cfg = parse_config(HAND_WRITTEN)

    assert cfg.description == "first line\n second line\na comment in the middle"
    assert cfg.main.as_dict() == {"memory": "1024", "hostname": "www"}
    assert cfg.main.raw_lxc() == [
        ("lxc.foo", "bar"),
        ("lxc.cgroup2.devices.allow", "c 1:3 rwm"),
        ("lxc.foo", "second"),
    ]
    assert cfg.pending.get("delete") == "swap,cores"
    assert cfg.pending.get("description") == "pending note"
    assert cfg.snapshots["snap_1"].get("description") == "snapshot note"
    assert cfg.snapshots["snap_1"].get("memory") == "512"
    assert cfg.warnings == []


def test_hand_written_file_round_trips_semantically():
    original = parse_config(HAND_WRITTEN)

    rewritten_text = format_config(original)
    rewritten = parse_config(rewritten_text)

    assert rewritten == original
    assert "lxc.foo: bar\n" in rewritten_text
    assert "lxc.cgroup2.devices.allow: c 1:3 rwm\n" in rewritten_text
    assert format_config(rewritten) == rewritten_text


def test_duplicate_key_last_value_wins_with_warning():
    cfg = parse_config("memory: 512\nswap: 0\nmemory: 1024\n")

    assert cfg.main.entries == [("memory", "1024"), ("swap", "0")]
    assert cfg.warnings == ["line 3: duplicate key 'memory', the last value is used"]


def test_unknown_key_kept_verbatim_with_warning():
    cfg = parse_config("memory: 512\nfancy_new_key: a=1,b=2\n")

    assert cfg.main.get("fancy_new_key") == "a=1,b=2"
    assert cfg.warnings == ["line 2: unknown key 'fancy_new_key' kept as it is"]
    assert format_config(cfg) == "memory: 512\nfancy_new_key: a=1,b=2\n"


def test_delete_outside_pending_is_dropped_with_warning():
    cfg = parse_config("memory: 512\ndelete: swap\n")

    assert "delete" not in cfg.main
    assert cfg.warnings == ["line 2: property 'delete' is only allowed in [pve:pending], line ignored"]


@pytest.mark.parametrize("text, message", [
    ("memory 512\n", "line 1: unable to parse config line: memory 512"),
    ("memory: 512\n  swap: 0\n", "line 2: unable to parse config line:   swap: 0"),
    ("Memory: 512\n", "line 1: unable to parse config line: Memory: 512"),
    ("memory:\n", "line 1: missing value for 'memory'"),
    ("memory: 1\n[snap\n", "line 2: unable to parse section header: [snap"),
    ("memory: 1\n\n[1snap]\n", "line 3: invalid snapshot name '1snap'"),
    ("[bad name]\n", "line 1: invalid snapshot name 'bad name'"),
    ("[" + "a" * 41 + "]\n", "line 1: invalid snapshot name '" + "a" * 41 + "'"),
    ("[a]\nmemory: 1\n[a]\n", "line 3: duplicate snapshot section [a]"),
    ("[pve:pending]\n[pve:pending]\n", "line 2: duplicate [pve:pending] section"),
    ("lxc..: x\n", "line 1: unable to parse config line: lxc..: x"),
])
def test_malformed_line_raises_with_line_number(text: str, message: str):
    with pytest.raises(ConfigError) as excinfo:
        parse_config(text, 123)

    assert excinfo.value.message.startswith(message)
    assert excinfo.value.vmid == 123


def test_snapshot_name_of_40_characters_accepted():
    name = "a" + "B-_9" * 9 + "xyz"

    cfg = parse_config(f"memory: 1\n\n[{name}]\nmemory: 1\n")

    assert len(name) == 40
    assert list(cfg.snapshots) == [name]


@pytest.mark.parametrize("cfg, message", [
    (ContainerConfig(main=Section([("memory", "5\n12")])), "invalid newline inside the value of 'memory'"),
    (ContainerConfig(main=Section([("memory", "  ")])), "empty value for 'memory'"),
    (ContainerConfig(main=Section([("Bad Key", "1")])), "invalid config key 'Bad Key'"),
    (ContainerConfig(snapshots={"9lives": Section([("memory", "1")])}), "invalid snapshot name '9lives'"),
])
def test_format_rejects_unwritable_values(cfg: ContainerConfig, message: str):
    with pytest.raises(ConfigError) as excinfo:
        format_config(cfg)

    assert excinfo.value.message == message


def test_format_rejects_description_entry_in_main_section():
    cfg = ContainerConfig(main=Section([("description", "x")]))

    with pytest.raises(ValueError, match="ContainerConfig.description"):
        format_config(cfg)


# --- Section ------------------------------------------------------------------


def test_section_set_replaces_in_place():
    section = Section([("arch", "amd64"), ("memory", "512"), ("swap", "0")])

    section.set("memory", "1024")

    assert section.entries == [("arch", "amd64"), ("memory", "1024"), ("swap", "0")]


def test_section_set_appends_before_raw_lxc_keys():
    section = Section([("memory", "512"), ("lxc.a", "1"), ("lxc.b", "2")])

    section.set("swap", "0")

    assert section.entries == [("memory", "512"), ("swap", "0"), ("lxc.a", "1"), ("lxc.b", "2")]


def test_section_set_appends_at_end_without_raw_lxc_keys():
    section = Section([("memory", "512")])

    section.set("swap", "0")

    assert section.keys() == ["memory", "swap"]


def test_section_set_rejects_raw_lxc_key():
    section = Section()

    with pytest.raises(ValueError):
        section.set("lxc.foo", "1")
    assert section.entries == []


def test_section_add_raw_lxc_keeps_repeats():
    section = Section([("memory", "512")])

    section.add_raw_lxc("lxc.mount.entry", "a")
    section.add_raw_lxc("lxc.mount.entry", "b")

    assert section.raw_lxc() == [("lxc.mount.entry", "a"), ("lxc.mount.entry", "b")]


def test_section_get_delete_contains():
    section = Section([("memory", "512"), ("lxc.memory", "x")])

    assert section.get("memory") == "512"
    assert section.get("swap") is None
    assert section.get("swap", "0") == "0"
    assert section.get("lxc.memory") is None
    assert "memory" in section
    assert "lxc.memory" not in section
    assert section.delete("memory") is True
    assert section.delete("memory") is False
    assert section.delete("lxc.memory") is False
    assert section.entries == [("lxc.memory", "x")]
    assert section.as_dict() == {}


# --- files --------------------------------------------------------------------


def test_load_missing_config(paths: Paths):
    with pytest.raises(ConfigError) as excinfo:
        load_config(paths, 100)

    assert excinfo.value.message == "Configuration file 'etc/pve/lxc/100.conf' does not exist"
    assert excinfo.value.vmid == 100


def test_load_reports_file_and_line(paths: Paths):
    paths.lxc_conf_dir.mkdir(parents=True)
    paths.conf(100).write_text("memory: 512\nbroken line\n")

    with pytest.raises(ConfigError) as excinfo:
        load_config(paths, 100)

    assert excinfo.value.message == "etc/pve/lxc/100.conf: line 2: unable to parse config line: broken line"
    assert excinfo.value.vmid == 100


def test_load_rejects_invalid_utf8(paths: Paths):
    paths.lxc_conf_dir.mkdir(parents=True)
    paths.conf(100).write_bytes(b"# caf\xe9\nmemory: 512\n")

    with pytest.raises(ConfigError, match="is not valid UTF-8"):
        load_config(paths, 100)


def test_load_logs_warnings(paths: Paths, caplog: pytest.LogCaptureFixture):
    paths.lxc_conf_dir.mkdir(parents=True)
    paths.conf(100).write_text("memory: 512\nnewkey: 1\n")

    cfg = load_config(paths, 100)

    assert cfg.main.get("newkey") == "1"
    assert "etc/pve/lxc/100.conf: line 2: unknown key 'newkey' kept as it is" in caplog.text


def test_write_creates_file_with_mode_0640(paths: Paths):
    cfg = parse_config((FIXTURES / "108-full.conf").read_text(encoding="utf-8"))

    write_config(paths, 108, cfg)

    path = paths.conf(108)
    assert path.read_text(encoding="utf-8") == (FIXTURES / "108-full.conf").read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert load_config(paths, 108) == cfg


def test_write_replaces_file_through_rename(paths: Paths):
    write_config(paths, 100, ContainerConfig(main=Section([("memory", "512")])))
    old_inode = paths.conf(100).stat().st_ino

    write_config(paths, 100, ContainerConfig(main=Section([("memory", "1024")])))

    assert paths.conf(100).stat().st_ino != old_inode
    assert paths.conf(100).read_text() == "memory: 1024\n"
    assert sorted(os.listdir(paths.lxc_conf_dir)) == ["100.conf"]


def test_write_failure_keeps_old_file(paths: Paths, monkeypatch: pytest.MonkeyPatch):
    write_config(paths, 100, ContainerConfig(main=Section([("memory", "512")])))

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(config_format.os, "fsync", failing_fsync)
    with pytest.raises(ConfigError) as excinfo:
        write_config(paths, 100, ContainerConfig(main=Section([("memory", "1024")])))

    assert excinfo.value.message == "unable to write 'etc/pve/lxc/100.conf': Input/output error"
    assert excinfo.value.vmid == 100
    assert paths.conf(100).read_text() == "memory: 512\n"
    assert sorted(os.listdir(paths.lxc_conf_dir)) == ["100.conf"]


def test_write_failure_on_rename_keeps_old_file(paths: Paths, monkeypatch: pytest.MonkeyPatch):
    write_config(paths, 100, ContainerConfig(main=Section([("memory", "512")])))

    def failing_replace(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(config_format.os, "replace", failing_replace)
    with pytest.raises(ConfigError, match="No space left on device"):
        write_config(paths, 100, ContainerConfig(main=Section([("memory", "1024")])))

    assert paths.conf(100).read_text() == "memory: 512\n"
    assert sorted(os.listdir(paths.lxc_conf_dir)) == ["100.conf"]


def test_write_of_unwritable_config_leaves_file_untouched(paths: Paths):
    write_config(paths, 100, ContainerConfig(main=Section([("memory", "512")])))

    with pytest.raises(ConfigError):
        write_config(paths, 100, ContainerConfig(main=Section([("memory", "1\n2")])))

    assert paths.conf(100).read_text() == "memory: 512\n"
    assert sorted(os.listdir(paths.lxc_conf_dir)) == ["100.conf"]


def test_config_digest_is_sha1_of_text():
    text = (FIXTURES / "101-description.conf").read_text(encoding="utf-8")

    assert config_digest(text) == hashlib.sha1(text.encode("utf-8")).hexdigest()
    assert config_digest(text) != config_digest(text + "\n")
