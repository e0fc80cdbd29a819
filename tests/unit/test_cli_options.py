"""Both option spellings, and the non-root refusal."""

import os
import subprocess
import sys

from pct.cli.common import normalise_argv


def test_single_dash_long_options_become_double():
    assert normalise_argv(["create", "100", "-memory", "512", "--swap", "0"]) == \
        ["create", "100", "--memory", "512", "--swap", "0"]


def test_arguments_after_double_dash_are_untouched():
    assert normalise_argv(["exec", "100", "--", "ls", "-la", "-memory"]) == \
        ["exec", "100", "--", "ls", "-la", "-memory"]


def test_short_flags_stay():
    assert normalise_argv(["-h"]) == ["-h"]


def test_non_root_is_refused():
    script = "import os, sys; os.setuid(65534); from pct.cli.pct import main; sys.exit(main(['list']))"
    if os.geteuid() != 0:
        script = "import sys; from pct.cli.pct import main; sys.exit(main(['list']))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == "pct: must be run as root\n"
