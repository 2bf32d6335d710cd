"""The subcommands of `python -m harness`: one module each, with `add_parser(subparsers)`.

Adding a command is one module here and one name in COMMANDS.
"""

COMMANDS = ["list", "run", "report", "compare", "ab", "train"]
