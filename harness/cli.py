"""`python -m harness`: the command line. Each subcommand lives in harness/commands/."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from harness.commands import COMMANDS, MODULES


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised where the program is, as Ctrl-C raises KeyboardInterrupt: both unwind
    through the `with` blocks that end child processes and the writes that keep results."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)


def _stop(signum, frame):
    raise Stopped(signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="nnladder: how fast is this network on each rung of the implementation "
        "ladder, and why?",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"harness.commands.{MODULES.get(name, name)}").add_parser(
            subparsers
        )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        return args.func(args) or 0
    except (KeyError, ValueError, TypeError, OSError) as error:
        # Bad names and values, unusable paths: one clear line, no traceback.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"stopped by {str(stop) or 'SIGINT'}", file=sys.stderr)
        return 143 if isinstance(stop, Stopped) else 130
