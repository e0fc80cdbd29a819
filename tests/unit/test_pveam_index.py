"""The appliance index format and the sources config, parsed without root."""

import pytest

from pct.appliance.index import format_index, parse_index
from pct.appliance.sources import describe_changes, parse_sources
from pct.errors import TemplateError

SHA = "ab" * 64

INDEX = f"""Package: debian-12-standard
Version: 12.7-1
Type: lxc
OS: debian-12
Section: system
Maintainer: Someone <someone@example.org>
Architecture: amd64
Location: system/debian-12-standard_12.7-1_amd64.tar.zst
Infopage: https://example.org/debian
Description: Debian 12 Bookworm (standard)
 A small Debian system.
 .
 Second paragraph.
X-Custom-Field: kept as is
md5sum: 0123456789abcdef0123456789abcdef
sha512sum: {SHA}

Package: turnkey-wordpress
Version: 18.0-1
Type: lxc
Section: turnkeylinux
Location: turnkey/debian-12-turnkey-wordpress_18.0-1_amd64.tar.gz
md5sum: 0123456789abcdef0123456789abcdef
"""


def stanza(**fields):
    base = {"Package": "p", "Version": "1-1", "Type": "lxc", "Location": "p_1-1_amd64.tar.gz", "md5sum": "00"}
    base.update(fields)
    return "".join(f"{key}: {value}\n" for key, value in base.items() if value is not None)


def test_index_parses_every_field():
    first, second = parse_index(INDEX, "test")
    assert first.package == "debian-12-standard"
    assert first.version == "12.7-1"
    assert first.section == "system"
    assert first.template == "debian-12-standard_12.7-1_amd64.tar.zst"
    assert first.get("description") == "Debian 12 Bookworm (standard)\nA small Debian system.\n\nSecond paragraph."
    assert first.get("X-Custom-Field") == "kept as is"
    assert first.get("sha512sum") == SHA
    assert second.section == "turnkeylinux"
    assert second.line == 18


def test_index_round_trip_keeps_fields():
    entries = parse_index(INDEX, "test")
    again = parse_index(format_index(entries), "again")
    assert [entry.fields for entry in again] == [entry.fields for entry in entries]
    assert " .\n" in format_index(entries)


@pytest.mark.parametrize("text, message", [
    (stanza(Location=None), "stanza at line 1 (p): missing Location"),
    (stanza(Version=None), "truncated stanza, missing Version"),
    (stanza(md5sum=None), "truncated stanza, missing sha512sum or md5sum"),
    (stanza() + "Descrip", "line 6: expected 'Field: value', got 'Descrip'"),
    (" orphan continuation\n", "line 1: continuation line without a field"),
    (stanza() + "\n" + stanza(), "line 7: duplicate package 'p' (first defined at line 1)"),
    (stanza(Location="../../etc/cron.d/evil.tar.gz"), "unsafe Location '../../etc/cron.d/evil.tar.gz'"),
    (stanza(Location="system/..\\x.tar.gz"), "unsafe Location"),
    (stanza(Location="system/"), "unsafe Location"),
    (stanza(Location="system/notes.txt"), "is not a template archive"),
])
def test_index_rejects_bad_stanza(text, message):
    with pytest.raises(TemplateError) as error:
        parse_index(text, "idx")
    assert message in str(error.value)
    assert str(error.value).startswith("idx: ")
    assert "\n" not in str(error.value)


def test_index_changes_listed():
    old = parse_index(stanza(Package="a") + "\n" + stanza(Package="b"), "old")
    new = parse_index(stanza(Package="b", Version="2-1") + "\n" + stanza(Package="c"), "new")
    assert describe_changes("s", old, new) == [
        "s: removed a 1-1", "s: updated b 1-1 -> 2-1", "s: added c 1-1"]


def test_sources_config_parses():
    text = ("# comment\nsource: one\n\turl http://127.0.0.1:9/aplinfo.dat\n"
            "\tsignature http://127.0.0.1:9/aplinfo.dat.asc\n\tkeyring /etc/pve/key.gpg\n\n"
            "source: two\n\turl file:///srv/index\n")
    one, two = parse_sources(text, "cfg")
    assert (one.source_id, one.url, one.keyring) == ("one", "http://127.0.0.1:9/aplinfo.dat", "/etc/pve/key.gpg")
    assert one.signature == "http://127.0.0.1:9/aplinfo.dat.asc"
    assert (two.source_id, two.signature) == ("two", None)


@pytest.mark.parametrize("text, message", [
    ("source: a\n\turl ftp://x/y\n", "url 'ftp://x/y' must be an http, https or file URL"),
    ("source: a\n\tsignature http://x/y.asc\n", "missing url"),
    ("source: a\n\turl http://x/y\n\tsignature http://x/y.asc\n", "needs a keyring"),
    ("source: a\n\tmirror http://x\n", "line 2: unknown option 'mirror'"),
    ("\turl http://x\n", "line 1: option outside a 'source:' section"),
    ("index: a\n", "line 1: expected 'source: <id>'"),
])
def test_sources_config_rejects(text, message):
    with pytest.raises(TemplateError) as error:
        parse_sources(text, "cfg")
    assert message in str(error.value)
