"""The `twin` command line: run, check, compare, sweep, validate.

Exit codes follow common conventions: 0 success, 1 the run worked but a check failed
(a missed deadline with --fail-on-deadline, a failed validation case), 2 bad input
(scenario, options), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import yaml

from twin import __version__
from twin.errors import TwinError
from twin.scenario.paths import parse_params

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 as well; keep its message one line
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="scenario YAML file")
    parser.add_argument("--seed", type=int, help="override run.seed")
    parser.add_argument("--param", action="append", default=[], metavar="PATH=VALUE",
                        help="override a scenario value by key path, e.g. topology.sites[LCG.CNAF.it].ces[0].slots=0 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="twin", description="Digital twin of the CTAO DIRAC/CTADIRAC production system.")
    parser.add_argument("--version", action="version", version=f"twin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a scenario and write events, metrics, summary and an HTML report")
    _add_run_options(run)
    run.add_argument("--out", type=Path, help="output folder (default: runs/<scenario name>)")
    run.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    run.add_argument("--no-report", action="store_true", help="skip the HTML report")
    run.add_argument("--fail-on-deadline", action="store_true", help="exit 1 when the plan misses run.deadline")

    check = sub.add_parser("check", help="validate a scenario and print its resolved form")
    _add_run_options(check)
    check.add_argument("--quiet", action="store_true", help="print nothing on success")

    compare = sub.add_parser("compare", help="side-by-side HTML report of a baseline run and a what-if run")
    compare.add_argument("baseline", type=Path, help="run folder of the baseline (from twin run --out)")
    compare.add_argument("whatif", type=Path, help="run folder of the what-if")
    compare.add_argument("--out", type=Path, help="HTML file to write (default: <whatif>/compare.html)")

    report = sub.add_parser("report", help="(re)write the HTML report of a run folder")
    report.add_argument("run", type=Path, help="run folder (from twin run --out)")
    report.add_argument("--out", type=Path, help="HTML file to write (default: <run>/report.html)")

    from twin import regress, sweep, validate

    sweep.add_sweep_arguments(sub.add_parser("sweep", help="parameter x seed sweep on dask.distributed (local cluster or --scheduler)"))
    validate.add_validate_arguments(sub.add_parser("validate", help="run the validation cases: expected vs twin values with tolerances"))
    regress.add_regress_arguments(sub.add_parser("regress", help="run a scenario with your plugin class and compare with a stored baseline"))
    return parser


def _load(args: argparse.Namespace):
    from twin.scenario.loader import load_scenario

    overrides = parse_params(args.param)
    if args.seed is not None:
        overrides["run.seed"] = args.seed
    return load_scenario(args.scenario, overrides)


def _cmd_run(args: argparse.Namespace) -> int:
    from twin.runner import run_scenario

    scenario = _load(args)
    out = args.out or Path("runs") / scenario.name
    result = run_scenario(scenario, out, progress=not args.no_progress, report=not args.no_report)
    print(result.headline())
    print(f"outputs in {out}")
    if args.fail_on_deadline and result.deadline_met is False:
        return EXIT_FAILED
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    scenario = _load(args)
    if not args.quiet:
        print(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from twin.report.html import write_compare_report

    path = write_compare_report(args.baseline, args.whatif, args.out or args.whatif / "compare.html")
    print(f"compare report: {path}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from twin.report.html import write_folder_report

    print(f"report: {write_folder_report(args.run, args.out)}")
    return EXIT_OK


def _lazy(module: str, function: str):
    """Commands whose modules pull in dask or pytest are imported only when used."""

    def command(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"twin.{module}"), function)(args)

    return command


COMMANDS = {
    "run": _cmd_run, "check": _cmd_check, "compare": _cmd_compare, "report": _cmd_report,
    "sweep": _lazy("sweep", "cmd_sweep"), "validate": _lazy("validate", "cmd_validate"), "regress": _lazy("regress", "cmd_regress"),
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except TwinError as exc:
        print(f"twin: error: {exc}".replace("\n", "\ntwin: error: "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
