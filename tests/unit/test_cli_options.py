"""Both option spellings, and the non-root refusal."""

import os

import pytest

from pct.cli.common import normalise_argv
from pct.cli.pct import main


def test_single_dash_long_options_become_double():
    assert normalise_argv(["create", "100", "-memory", "512", "--swap", "0"]) == \
        ["create", "100", "--memory", "512", "--swap", "0"]


def test_arguments_after_double_dash_are_untouched():
    assert normalise_argv(["exec", "100", "--", "ls", "-la", "-memory"]) == \
        ["exec", "100", "--", "ls", "-la", "-memory"]


def test_short_flags_stay():
    assert normalise_argv(["-h"]) == ["-h"]


def test_non_root_is_refused(monkeypatch, capsys):
    # The interpreter under test may live where an unprivileged user cannot
    # read it, so the effective uid is replaced instead of switching users.
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["list"]) == 1
    assert capsys.readouterr().err == "pct: must be run as root\n"


def test_help_lists_schema_options(capsys):
    from pct.config.schema import OPTIONS

    if os.geteuid() != 0:
        return
    assert main(["help", "create"]) == 0
    output = capsys.readouterr().out
    assert "--memory" in output
    assert OPTIONS["memory"].description in output
    assert "--net0" in output


def test_help_unknown_command(capsys):
    if os.geteuid() != 0:
        return
    assert main(["help", "nope"]) == 1
    assert capsys.readouterr().err.startswith("no such command 'nope'")


def test_abbreviated_option_is_rejected():
    from pct.cli.pct import build_parser

    parser = build_parser("set")
    with pytest.raises(SystemExit) as excinfo:
        parser.parse_args(["set", "800", "--mem", "300"])

    assert excinfo.value.code == 2


def test_restore_start_is_not_startup():
    from pct.cli.pct import build_parser

    args = build_parser("restore").parse_args(["restore", "812", "archive.tar.zst", "--start", "1"])

    assert args.start == "1"
    assert args.opt_startup is None


def test_restore_unique_flag():
    from pct.cli.pct import build_parser

    args = build_parser("restore").parse_args(["restore", "812", "archive.tar.zst", "--unique"])

    assert args.unique == "1"


def test_unrecognized_argument_names_the_command(capsys):
    from pct.cli.pct import dispatch

    with pytest.raises(SystemExit) as excinfo:
        dispatch(["cpusets", "900"])

    assert excinfo.value.code == 2
    assert capsys.readouterr().err == "pct cpusets: unrecognized arguments: 900 (see 'pct cpusets --help')\n"
