"""The `twin` command line: one registry of subcommands, each in the module that owns it.

Exit codes follow common conventions: 0 success, 1 the run worked but a check failed
(a missed deadline with --fail-on-deadline, a failed validation case or regression, a failed
sweep run), 2 bad input (one line on stderr naming the file or argument, the key path and what
was expected), 130 interrupted.

Adding a subcommand is one `register(...)` line naming the module functions that add its
arguments and run it (`module:function` strings: the module is imported only when the parser is
built, its code runs only when chosen); shared options live in `twin.options`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from twin import __version__
from twin._native import compiled_modules
from twin import options as opt
from twin.errors import TwinError
from twin.scenario.paths import parse_params

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = ("exit codes: 0 success; 1 the command ran but a check failed; 2 bad input (one line on stderr); "
              "130 interrupted")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own exit code is 2 as well; keep its message to one line
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Command:
    """A subcommand: `arguments(parser)` adds its options, `run(args) -> exit code` runs it."""

    name: str
    help: str
    arguments: str
    run: str
    examples: tuple[str, ...]


COMMANDS: dict[str, Command] = {}


def _build() -> str:
    """How this checkout runs: pure Python, or with `tools/native.py build`'s compiled modules."""
    compiled = compiled_modules()
    return f"{len(compiled)} modules compiled" if compiled else "pure Python"


def register(name: str, help: str, arguments: str, run: str, *examples: str) -> None:
    """Register `twin NAME`; `arguments` and `run` are 'module:function' (see the module doc)."""
    COMMANDS[name] = Command(name, help, arguments, run, examples)


def _resolve(target: str) -> Callable:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="twin", description="Digital twin of the CTAO DIRAC/CTADIRAC production system.",
                     epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"twin {__version__} ({_build()})")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for command in COMMANDS.values():
        epilog = "\n".join(["examples:", *(f"  {e}" for e in command.examples), "", EXIT_CODES])
        child = sub.add_parser(command.name, help=command.help, description=command.help, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        _resolve(command.arguments)(child)
    return parser


# ---------------------------------------------------------------- run, check
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    opt.add_scenario(parser)
    opt.add_out(parser, "runs/<scenario name>")
    opt.add_quiet(parser)
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.add_argument("--fail-on-deadline", action="store_true", help="exit 1 when the plan misses run.deadline")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="run at this fraction of the scenario's size: MC tasks, initial files, CE slots (default 1; as twin calibrate --scale)")
    from twin.replicas import add_replica_arguments

    add_replica_arguments(parser)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    opt.add_scenario(parser)
    opt.add_quiet(parser, progress=False)


def load(args: argparse.Namespace):
    """The scenario named by SCENARIO, --param and --seed (errors in those name the argument)."""
    from twin.scenario.loader import load_scenario

    overrides = parse_params(args.param)
    if args.seed is not None:
        overrides["run.seed"] = args.seed
    scenario = load_scenario(args.scenario, overrides)
    if getattr(args, "scale", 1.0) != 1.0:
        from twin.calibration.runs import scaled

        scenario = scaled(scenario, args.scale)
    return scenario


def cmd_run(args: argparse.Namespace) -> int:
    from twin.outputs import check_out
    from twin.runner import run_scenario

    scenario = load(args)
    out = args.out or Path("runs") / scenario.name
    check_out(out, args.force)
    for warning in _warnings(scenario):
        print(f"twin: warning: {warning}", file=sys.stderr)
    if args.seeds is not None:
        from twin.replicas import cmd_run_seeds

        return cmd_run_seeds(args, scenario, out)
    result = run_scenario(scenario, out, progress=opt.show_progress(args), report=not args.no_report, force=args.force)
    opt.say(args, result.headline(), f"outputs in {result.out}")
    if args.fail_on_deadline and result.deadline_met is False:
        return EXIT_FAILED
    return EXIT_OK


def _warnings(scenario) -> list[str]:
    from twin.scenario.bounds import warnings

    return warnings(scenario)


def cmd_check(args: argparse.Namespace) -> int:
    import yaml

    scenario = load(args)
    for warning in _warnings(scenario):
        print(f"twin: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        print(yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False), end="")
    return EXIT_OK


# ---------------------------------------------------------------- compare, report
def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="run folder of the baseline (twin run --out, with or without --seeds)")
    parser.add_argument("whatif", type=Path, nargs="+", help="run folder(s) of the what-if(s), each compared with the baseline")
    opt.add_out(parser, "<whatif>-vs-<baseline> beside the what-if folder; compare.html inside")
    opt.add_quiet(parser, progress=False)


def cmd_compare(args: argparse.Namespace) -> int:
    from twin.outputs import Staging, check_out
    from twin.report.compare import check_sides, write_compare_report

    for warning in check_sides(args.baseline, args.whatif):
        print(f"twin: warning: {warning}", file=sys.stderr)
    out = args.out or args.whatif[0].parent / f"{args.whatif[0].name}-vs-{args.baseline.name}"
    check_out(out, args.force, inputs=(args.baseline, *args.whatif))
    with Staging(out, "compare", args.force, {"baseline": str(args.baseline), "whatif": [str(w) for w in args.whatif]}) as staging:
        write_compare_report(args.baseline, args.whatif, staging.path / "compare.html")
        where = staging.commit()
    opt.say(args, f"compare report: {where / 'compare.html'}")
    return EXIT_OK


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run folder (from twin run --out)")
    opt.add_out(parser, "rewrite report.html inside the run folder")
    opt.add_quiet(parser, progress=False)


def cmd_report(args: argparse.Namespace) -> int:
    from twin.outputs import Staging, check_out, update_manifest
    from twin.report.html import write_folder_report
    from twin.runfolder import check_run

    for warning in check_run(args.run):
        print(f"twin: warning: {warning}", file=sys.stderr)
    if args.out is None:
        path = write_folder_report(args.run, args.run / "report.html.tmp")
        path.replace(args.run / "report.html")
        update_manifest(args.run, ["report.html"])
        opt.say(args, f"report: {args.run / 'report.html'}")
        return EXIT_OK
    check_out(args.out, args.force, inputs=(args.run,))
    with Staging(args.out, "report", args.force, {"run": str(args.run)}) as staging:
        write_folder_report(args.run, staging.path / "report.html")
        where = staging.commit()
    opt.say(args, f"report: {where / 'report.html'}")
    return EXIT_OK


# ---------------------------------------------------------------- scenarios
def add_scenarios_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, help="folder of scenarios (default: ./scenarios, else the shipped ones)")
    opt.add_quiet(parser, progress=False)


def cmd_scenarios(args: argparse.Namespace) -> int:
    from twin.scenario.catalog import list_scenarios

    rows = list_scenarios(args.dir)
    width = max((len(str(r.path)) for r in rows), default=0)
    opt.say(args, *(f"{str(r.path).ljust(width)}  {r.question}" for r in rows))
    return EXIT_OK


# ---------------------------------------------------------------- the registry
register("run", "simulate a scenario and write events, metrics, summary and an HTML report",
         "twin.cli:add_run_arguments", "twin.cli:cmd_run",
         "twin run scenarios/prod5b-baseline.yaml --out runs/base",
         "twin run scenarios/prod5b-baseline.yaml --seed 7 --param 'run.duration=3w' --out runs/seed7 --force",
         "twin run scenarios/whatif-site-outage.yaml --seeds 8 --out runs/outage-seeds")
register("check", "validate a scenario and print its resolved form",
         "twin.cli:add_check_arguments", "twin.cli:cmd_check",
         "twin check scenarios/whatif-site-outage.yaml --quiet",
         "twin check scenarios/prod5b-baseline.yaml --param 'dirac.transformation_agent.polling_time=5m'")
register("scenarios", "list the shipped scenarios and the question each one answers",
         "twin.cli:add_scenarios_arguments", "twin.cli:cmd_scenarios", "twin scenarios")
register("compare", "HTML report of a baseline against one or more what-ifs (run or --seeds folders), deltas tested",
         "twin.cli:add_compare_arguments", "twin.cli:cmd_compare",
         "twin compare runs/base runs/outage --out runs/outage-vs-base",
         "twin compare runs/base-seeds runs/outage-seeds runs/slowdb-seeds --out runs/what-ifs")
register("report", "(re)write the HTML report of a run folder",
         "twin.cli:add_report_arguments", "twin.cli:cmd_report",
         "twin report runs/base", "twin report runs/base --out runs/base-report")
register("sweep", "parameter x seed sweep on dask.distributed (local cluster or --scheduler)",
         "twin.sweep:add_sweep_arguments", "twin.sweep:cmd_sweep",
         "twin sweep scenarios/prod5b-baseline.yaml --param 'topology.sites[LCG.PIC.es].ces[0].slots=0,500' --seeds 3",
         "twin sweep scenarios/prod5b-baseline.yaml --param 'run.seed=1,2' --scheduler tcp://10.0.0.5:8786")
register("validate", "run the validation cases: expected vs twin values with tolerances",
         "twin.validate:add_validate_arguments", "twin.validate:cmd_validate",
         "twin validate --quiet", "twin validate --only 'mmc-*' --out runs/validation")
register("regress", "run a scenario with your plugin class and compare with a stored baseline",
         "twin.regress:add_regress_arguments", "twin.regress:cmd_regress",
         "twin regress tests/data/minimal.yaml --plugin examples/plugins/by_run_chunk.py:RunChunkPlugin "
         "--step test/Processing --baseline examples/plugins/baselines/minimal-ByRunChunk.json")

register("import-cs", "DIRAC CS dump (.cfg) -> scenario topology and DIRAC options; missing values reported",
         "twin.calibration.import_cs:add_import_cs_arguments", "twin.calibration.import_cs:cmd_import_cs",
         "twin import-cs dirac.cfg --out models/sites/from-cs.yaml")
register("calibrate", "fit scenario parameters to observed Transformation Monitor/accounting data (optuna on dask)",
         "twin.calibration.calibrate:add_calibrate_arguments", "twin.calibration.calibrate:cmd_calibrate",
         "twin calibrate validation/observed/prod5b-lapalma-transformation-monitor-2021-05-10.csv --scenario "
         "scenarios/prod5b-baseline.yaml --scale 0.05 --fit 'failure_models.steps[evndisp-proton].failure_prob=0.45:0.85'")
register("sensitivity", "Morris/Sobol screening of a scenario's assumptions: what the verdict hangs on (SALib on dask)",
         "twin.calibration.sensitivity:add_sensitivity_arguments", "twin.calibration.sensitivity:cmd_sensitivity",
         "twin sensitivity scenarios/prod5b-baseline.yaml --scale 0.05 --only 'failure_models.*' --out runs/prod5b-baseline")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _resolve(COMMANDS[args.command].run)(args)
    except TwinError as exc:
        print(f"twin: error: {exc}".replace("\n", "\ntwin: error: "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print(f"twin: interrupted{_partial(exc)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _partial(exc: KeyboardInterrupt) -> str:
    """Where an interrupted run (twin.runner.RunInterrupted) or sweep (twin.sweep.SweepInterrupted) left
    its partial outputs, if anywhere."""
    if hasattr(exc, "message"):
        return exc.message()
    where, result = getattr(exc, "where", None), getattr(exc, "result", None)
    if where is None or result is None:
        return ""
    from twin.engine.clock import format_duration

    return f" at simulated {format_duration(result.summary['simulated_time'])}; partial outputs (marked incomplete) in {where}"


if __name__ == "__main__":
    sys.exit(main())
