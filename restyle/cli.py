"""The ``restyle`` command: one entry point, one subcommand per job.

Each subpackage contributes its subcommand through a ``register(subparsers)``
function in its own ``cli`` module, imported lazily so that ``restyle
stylize`` never pays for importing the training or API stacks.

Not every install has every stack (the extras in pyproject.toml: a serving
machine has no PyTorch). An import that fails for a missing extra, while the
subcommand's module loads or while it runs, becomes one line naming the extra
and exit 2 (``restyle.errors.missing_extra``); ``restyle --help`` still lists
such a command, with the install line as its help.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from restyle import __version__
from restyle.errors import MissingExtra, UserError, missing_extra

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
    """The parser with every subcommand (or only ``only``), each from its own lazily imported module.

    Raises :class:`MissingExtra` when ``only``'s module needs an extra that is not installed; without
    ``only`` (``restyle --help``) such a command is listed with the line that installs it.
    """
    parser = _Parser(prog="restyle", description="Real-time neural style transfer.")
    parser.add_argument("--version", action="version", version=f"restyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen: set[str] = set()
    unavailable: dict[str, ModuleNotFoundError] = {}  # module -> why it cannot be imported here
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            continue
        if module in unavailable:
            _add_unavailable(sub, name, unavailable[module])
            continue
        if module in seen:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("restyle"):
                continue  # subcommand not built in this checkout
            missing = missing_extra(exc, name)
            if missing is None:
                raise
            if only is not None:
                raise missing from None
            unavailable[module] = exc
            _add_unavailable(sub, name, exc)
            continue
        seen.add(module)
        mod.register(sub)
    return parser


def _add_unavailable(sub: argparse._SubParsersAction, name: str, exc: ModuleNotFoundError) -> None:
    """List a command whose extra is missing: its help is the install line (running it says the same)."""
    missing = missing_extra(exc, name)
    assert missing is not None  # checked by the caller for this module
    p = sub.add_parser(name, help=f"(not installed: {missing.install})", description=str(missing))

    def run(_args: argparse.Namespace) -> int:
        raise missing

    p.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the module of the chosen subcommand when it is recognisable.
    only = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        parser = build_parser(only)
    except MissingExtra as exc:
        print(f"restyle {only}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"restyle {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:  # a stack the command reaches only while it runs (serve: the web stack)
        missing = missing_extra(exc, args.command)
        if missing is None:
            raise
        print(f"restyle {args.command}: error: {missing}", file=sys.stderr)
        return missing.exit_code
    except KeyboardInterrupt:
        print(f"restyle {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
