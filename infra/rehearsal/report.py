"""What the rehearsal prints: the substitutions first, then the journey's table, what the
rehearsal emulates itself and what it does not emulate, and the failing steps' logs."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from rehearsal.journey import StepResult
from rehearsal.ledger import Ledger
from rehearsal.processes import ContainerProcess

_STYLE = {"passed": "green", "FAILED": "bold red", "not run": "yellow"}


def substitutions(console: Console, ledger: Ledger) -> None:
    table = Table(title="Substitutions (only endpoints)", show_lines=False, expand=True)
    table.add_column("what", overflow="fold", ratio=2)
    table.add_column("deployed", overflow="fold", ratio=3)
    table.add_column("rehearsed", overflow="fold", ratio=3)
    for entry in ledger.substitutions:
        table.add_row(entry.what, entry.deployed, entry.rehearsed)
    console.print(table)


def journey(console: Console, results: list[StepResult]) -> None:
    table = Table(title="The journey", show_lines=True, expand=True)
    table.add_column("#", justify="right", width=3)
    table.add_column("step", ratio=2, overflow="fold")
    table.add_column("deployed component(s)", ratio=4, overflow="fold")
    table.add_column("result", ratio=5, overflow="fold")
    for result in results:
        style = _STYLE.get(result.outcome, "")
        table.add_row(
            str(result.step.number), result.step.title, result.components,
            f"[{style}]{result.outcome}[/] ({result.seconds:.0f}s) {result.detail}",
        )
    console.print(table)


def notes(console: Console, ledger: Ledger) -> None:
    console.print("[bold]Emulated by the rehearsal itself[/]")
    for line in ledger.emulated:
        console.print(f"  - {line}")
    console.print("[bold]Not emulated[/]")
    for line in ledger.not_emulated:
        console.print(f"  - {line}")


def failures(console: Console, results: list[StepResult]) -> None:
    for result in results:
        if result.outcome == "FAILED" and result.logs:
            console.rule(f"step {result.step.number} failed: logs")
            console.print(result.logs, markup=False, highlight=False)


def processes(console: Console, started: list[ContainerProcess]) -> None:
    """--verbose: the last lines of every process the rehearsal started."""
    for process in started:
        console.rule(f"{process.label}: exit {process.popen.returncode}, log {process.log_path}")
        console.print(process.log_tail(15), markup=False, highlight=False)
