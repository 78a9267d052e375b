"""Command-line options shared by the `twin` subcommands, below `twin.cli` and every command module.

A command module (sweep, regress, calibrate...) adds its arguments with these helpers so that every
subcommand spells `--seed`, `--param`, `--out`, `--force`, `--quiet` the same way and refuses bad
values at parse time (exit 2, one line) rather than after a simulation.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

MAX_SEED = 2**32 - 1  # numpy's legacy seeding bound; SeedSequence takes more but seeds this large are typos


def seed(text: str) -> int:
    """argparse type: a random seed, an integer in 0..2^32-1."""
    value = _int(text, "a seed")
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed between 0 and {MAX_SEED}, got {text}")
    return value


def count(minimum: int):
    """argparse type factory: an integer >= minimum."""

    def parse(text: str) -> int:
        value = _int(text, "an integer")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text}")
        return value

    return parse


def fraction(text: str) -> float:
    """argparse type: a finite number >= 0 (NaN would turn every comparison off)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, e.g. 0.05, got {text}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0 (a zero timeout gives up before any worker can connect)."""
    value = fraction(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text}")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what} (an integer), got {text!r}") from None


def add_scenario(parser: argparse.ArgumentParser, param_help: str | None = None) -> None:
    """SCENARIO, --seed and --param (repeatable key-path overrides)."""
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--seed", type=seed, help="override run.seed (0..2^32-1)")
    parser.add_argument("--param", action="append", default=[], metavar="PATH=VALUE",
                        help=param_help or "override a scenario value by key path, e.g. "
                        "'topology.sites[LCG.CNAF.it].ces[0].slots=0' (repeatable)")


def add_out(parser: argparse.ArgumentParser, default: str) -> None:
    """--out FOLDER and --force (replace a non-empty folder)."""
    parser.add_argument("--out", type=Path, metavar="DIR", help=f"output folder (default: {default}); "
                        "refused when it exists and is not empty, unless --force")
    parser.add_argument("--force", action="store_true", help="replace the output folder if it is not empty")


def add_quiet(parser: argparse.ArgumentParser, progress: bool = True) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (and the exit code)")
    if progress:
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar (also none when stderr is not a terminal)")


def show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only for a person watching: not with --quiet/--no-progress nor into a pipe or file."""
    return not getattr(args, "quiet", False) and not getattr(args, "no_progress", False) and _is_terminal(sys.stderr)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def say(args: argparse.Namespace, *lines: str) -> None:
    """Print result lines on stdout unless --quiet."""
    if not getattr(args, "quiet", False):
        for line in lines:
            print(line)
