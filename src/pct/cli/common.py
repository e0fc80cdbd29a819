"""Parts shared by every command-line tool: option spelling, the error edge, output."""

from __future__ import annotations

import os
import re
import sys
from typing import Callable

from pct.errors import PctError

_SINGLE_DASH_LONG = re.compile(r"^-[A-Za-z][A-Za-z0-9_-]+(=.*)?$")
OUTPUT_FORMATS = ("text", "json", "json-pretty")

# The spellings of a boolean option value on the command line.
BOOLEAN_TRUE = ("1", "yes", "on", "true")
BOOLEAN_CHOICES = ("0", "1", "yes", "no", "on", "off", "true", "false")


def normalise_argv(argv: list[str]) -> list[str]:
    """Accept ``-memory 512`` as ``--memory 512``; leave everything after ``--`` alone."""
    result = []
    for position, token in enumerate(argv):
        if token == "--":
            return result + argv[position:]
        if _SINGLE_DASH_LONG.match(token):
            token = "-" + token
        result.append(token)
    return result


def debug_enabled(argv: list[str], option_commands: frozenset[str] = frozenset()) -> bool:
    """Return whether ``--debug`` (or ``PCT_DEBUG=1``) requests debug output.

    In *option_commands* (``pct create``, ``pct set``) ``--debug`` after the
    command name is the container's ``debug`` option, not this flag.
    """
    if os.environ.get("PCT_DEBUG") == "1":
        return True
    end = argv.index("--") if "--" in argv else len(argv)
    command = next((i for i, token in enumerate(argv[:end]) if not token.startswith("-")), end)
    if "--debug" in argv[:command]:
        return True
    return command < end and argv[command] not in option_commands and "--debug" in argv[command:end]


def run_tool(name: str, argv: list[str] | None, dispatch: Callable[[list[str]], int],
             option_commands: frozenset[str] = frozenset()) -> int:
    """Run a tool's *dispatch*, turning library errors into one line on stderr.

    With *argv* None the arguments come from ``sys.argv`` and the tool is
    the whole process, which then ends as soon as the command has finished.
    """
    if argv is None:
        exit_process(_run_tool(name, sys.argv[1:], dispatch, option_commands))
    return _run_tool(name, argv, dispatch, option_commands)


def exit_process(status: int) -> None:
    """End the process with *status* once the standard streams and log handlers are flushed.

    This skips the interpreter's teardown of every loaded module, which took
    7 to 13 ms at the end of a ``vzdump`` run. No command leaves work for
    that teardown: files are closed where they are used, and every thread is
    a daemon.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or stream: the normal exit would not write it either
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(status)


def _run_tool(name: str, argv: list[str], dispatch: Callable[[list[str]], int],
              option_commands: frozenset[str]) -> int:
    argv = normalise_argv(argv)
    debug = debug_enabled(argv, option_commands)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format=f"{name}: %(relativeCreated)6d ms %(levelname)s: %(message)s")
    if os.geteuid() != 0:
        print(f"{name}: must be run as root", file=sys.stderr)
        return 1
    try:
        return dispatch(argv)
    except PctError as exc:
        if debug:
            raise
        print(exc.message, file=sys.stderr)
        return 2 if exc.message.startswith("400 ") else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def print_output(data, output_format: str, text: Callable[[object], str]) -> None:
    """Print *data* as JSON or through the *text* formatter."""
    import json

    if output_format == "json":
        print(json.dumps(data, sort_keys=True))
    elif output_format == "json-pretty":
        print(json.dumps(data, indent=4, sort_keys=True))
    else:
        output = text(data)
        if output:
            print(output)


def argument_parser(prog: str, description: str):
    """Return an argparse parser whose usage errors are one line on stderr, like pct's other errors."""
    import argparse

    class OneLineErrorParser(argparse.ArgumentParser):
        def __init__(self, *args, **kwargs):
            # An abbreviated option would be taken for another one: --start for --startup.
            kwargs["allow_abbrev"] = False
            super().__init__(*args, **kwargs)

        def error(self, message: str):
            self.exit(2, f"{self.prog}: {message} (see '{self.prog} --help')\n")

    return OneLineErrorParser(prog=prog, description=description)
