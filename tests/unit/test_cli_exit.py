"""A tool run as the whole process ends with its status and all of its output."""

import os
import subprocess
import sys

# A program that ends through exit_process with buffered output on both
# streams and an unflushed log record.
PROGRAM = """
import logging, sys
from pct.cli.common import exit_process
logging.basicConfig(stream=sys.stderr, format="%(message)s")
print("to stdout", end="")
sys.stderr.write("to stderr\\n")
logging.getLogger("pct").warning("logged")
exit_process(3)
"""


def test_exit_process_flushes_output():
    # Without PYTHONUNBUFFERED the output stays in Python's buffers until flushed.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env)

    assert result.returncode == 3
    assert result.stdout == "to stdout"
    assert result.stderr == "to stderr\nlogged\n"


def test_tool_exits_with_its_status(tmp_path):
    # vzdump of a container that does not exist fails with status 1 and one line.
    program = "import sys; from pct.cli.vzdump import main; sys.argv = ['vzdump', '101']; main(); print('not reached')"
    env = {"PCT_ROOT": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["CT 101: backup failed: Configuration file 'etc/pve/lxc/101.conf' does not exist"]
