"""`python -m rehearsal` (from infra/): rehearse the production deployment and drive the journey.

Exit status: 0 when every step that ran passed, 1 when a step failed (it is named), 2 when the
rehearsal could not be set up, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from rehearsal import report
from rehearsal.journey import Session, run_steps
from rehearsal.run import Options, rehearsal
from rehearsal.steps import STEPS


def _step_numbers(text: str) -> set[int]:
    try:
        return {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of step numbers: {text!r}") from None


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rehearsal", description=__doc__)
    parser.add_argument("--cdk-out", type=Path, help="reuse (or write) the synthesised "
                        "assembly here instead of synthesising into the run directory")
    parser.add_argument("--image-dir", type=Path, help="reuse the image built there (or "
                        "build it there once); by default each run builds its own")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, "
                        "stand-ins' files) and print where it is")
    parser.add_argument("--steps", type=_step_numbers, help="comma-separated step numbers "
                        "(their prerequisites run too)")
    parser.add_argument("--verbose", action="store_true", help="print the last lines of "
                        "every process's log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    console = Console(width=max(Console().width, 160))
    selected = args.steps or None
    started = time.monotonic()
    options = Options(cdk_out=args.cdk_out, image_dir=args.image_dir, keep=args.keep,
                      verbose=args.verbose)
    try:
        with rehearsal(options, say=console.print) as rehearsed:
            report.substitutions(console, rehearsed.ledger)
            session = Session(rehearsed, say=console.print, verbose=args.verbose)
            try:
                results = run_steps(session, STEPS, selected)
            finally:
                session.close()
            report.journey(console, results)
            report.substitutions(console, rehearsed.ledger)
            report.notes(console, rehearsed.ledger)
            if args.verbose:
                report.processes(console, rehearsed.launcher.started)
            report.failures(console, results)
    except KeyboardInterrupt:
        console.print("interrupted: processes stopped, run directory cleaned up")
        return 130
    except Exception as exc:  # the rehearsal itself could not be set up
        if args.verbose:
            console.print_exception()
        console.print(f"[bold red]rehearsal setup failed:[/] {type(exc).__name__}: {exc}")
        return 2
    failed = [r for r in results if r.outcome == "FAILED"]
    elapsed = time.monotonic() - started
    if failed:
        names = ", ".join(f"{r.step.number} ({r.step.title})" for r in failed)
        console.print(f"[bold red]rehearsal FAILED[/] in {elapsed:.0f}s: step(s) {names}")
        return 1
    console.print(f"[bold green]rehearsal passed[/] in {elapsed:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
