"""Run every benchmark module in bench/ (each has ``main(argv)``), passing the arguments through.

``python -m bench --write docs/benchmarks.md`` is what ``make bench`` runs;
``python -m bench stylize_speed --quick`` runs only the named modules.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

SKIP = {"common", "__main__", "new_style_protocol"}  # the protocol runs as `new_style --protocol` (hours, not minutes)


def modules() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in SKIP and not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-") and a in modules()]
    rest = [a for a in argv if a not in names]
    failed = []
    for name in names or modules():
        print(f"== bench.{name}", flush=True)
        try:
            importlib.import_module(f"bench.{name}").main(rest)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
