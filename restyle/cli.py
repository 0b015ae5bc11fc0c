"""The ``restyle`` command: one entry point, one subcommand per job.

Each subpackage contributes its subcommand through a ``register(subparsers)``
function in its own ``cli`` module, imported lazily so that ``restyle
stylize`` never pays for importing the training or API stacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from restyle import __version__
from restyle.errors import UserError

# subcommand -> module providing register(subparsers)
COMMANDS: dict[str, str] = {
    "train": "restyle.train.cli",
    "export": "restyle.export.cli",
    "stylize": "restyle.runtime.cli",
    "styles": "restyle.runtime.cli",
    "serve": "restyle.api.cli",
    "worker": "restyle.jobs.cli",
    "video": "restyle.video.cli",
    "live": "restyle.video.cli",
    "gatys": "restyle.reference.cli",
    "viz": "restyle.reference.cli",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad flags already; keep its one-line message."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="restyle", description="Real-time neural style transfer.")
    parser.add_argument("--version", action="version", version=f"restyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen: set[str] = set()
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            continue
        if module in seen:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("restyle"):
                continue  # subcommand not built in this checkout
            raise
        seen.add(module)
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the module of the chosen subcommand when it is recognisable.
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"restyle {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"restyle {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
