"""Argument checks shared by the bench scripts (imported from their own directory).

A bad flag value is argparse's one-line usage error (exit 2); a user mistake found while running
(a missing pairs directory, a base model that does not load) is one line naming it (exit 1),
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def int_list(low: int = 0) -> Callable[[str], list[int]]:
    """argparse type: comma-separated integers >= `low` (`4,10,16`)."""

    def parse(text: str) -> list[int]:
        parts = [p.strip() for p in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
        return [_int_at_least(p, low) for p in parts]

    return parse


def lr_list(text: str) -> list[float]:
    """argparse type: comma-separated learning rates in (0, 1) (`2e-4,1e-3`)."""
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected numbers like 2e-4,1e-3, got {text!r}"
            ) from None
        if not 0 < value < 1:
            raise argparse.ArgumentTypeError(f"learning rates must be in (0, 1), got {part!r}")
        out.append(value)
    return out


def run(main: Callable[[], object], prog: str) -> None:
    """Call `main`; filingcontrast's user errors become `prog: message` and exit 1, Ctrl-C 130."""
    from filingcontrast.errors import UserError

    try:
        code = main()
    except UserError as exc:
        sys.exit(f"{prog}: {exc}")
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
