"""The subcommands of `python -m harness`: one module each, with `add_parser(subparsers)`.

Adding a command is one module here and one name in COMMANDS (MODULES: a command whose
module has another name).
"""

COMMANDS = [
    "list",
    "run",
    "report",
    "compare",
    "ab",
    "bisect",
    "train",
    "export",
    "import",
    "history",
]
MODULES = {"import": "import_run"}  # `import` is a Python keyword: a module is not named so
