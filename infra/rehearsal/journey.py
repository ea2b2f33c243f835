"""The user's journey through the rehearsed deployment: the steps, their order, their results.

Each step is a function of the journey's `Session` that returns (deployed components, what it
saw), or raises `StepFailed` (with the log tails of the processes involved). A step whose
prerequisite failed is not run. `--steps` selects steps; their prerequisites run too.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from rehearsal.run import Rehearsed


class StepFailed(Exception):
    """A step's failure. `soft`: what later steps need did happen (they still run)."""

    def __init__(self, detail: str, *, logs: str = "", components: str = "",
                 soft: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.logs = logs
        self.components = components
        self.soft = soft


@dataclass
class Session:
    """What the steps share: the rehearsal, the user's clients and credentials."""

    rehearsed: Rehearsed
    say: Callable[[str], None]
    verbose: bool = False
    api: httpx.Client | None = None  # through API Gateway
    alb: httpx.Client | None = None  # straight to the load balancer
    username: str = "alice"
    password: str = "rehearsal-Password-1"
    access_token: str = ""
    refresh_token: str = ""
    user_id: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def gateway(self) -> httpx.Client:
        if self.api is None:
            apis = self.rehearsed.rest_apis
            if not apis:
                raise StepFailed("the templates define no REST API")
            self.api = httpx.Client(transport=self.rehearsed.gateway_transport(),
                                    base_url=apis[0].url, timeout=120)
        return self.api

    def load_balancer(self, host: str) -> httpx.Client:
        if self.alb is None:
            self.alb = httpx.Client(transport=self.rehearsed.alb_transport(),
                                    base_url=f"https://{host}", timeout=60)
        return self.alb

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def close(self) -> None:
        for client in (self.api, self.alb):
            if client is not None:
                client.close()


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    run: Callable[[Session], tuple[str, str]]
    needs: tuple[int, ...] = ()


@dataclass
class StepResult:
    step: Step
    components: str
    outcome: str  # "passed", "FAILED", "not run"
    detail: str
    seconds: float = 0.0
    logs: str = ""
    #: Later steps may run although this one failed (its effect happened).
    usable: bool = False


def expect(response: httpx.Response, status: int | tuple[int, ...], what: str) -> Any:
    """The JSON body of a response with the expected status; StepFailed otherwise."""
    wanted = (status,) if isinstance(status, int) else status
    if response.status_code not in wanted:
        raise StepFailed(f"{what}: HTTP {response.status_code} {response.text[:300]}")
    try:
        return response.json()
    except ValueError:
        return response.text


def run_steps(session: Session, steps: list[Step], selected: set[int] | None) -> list[StepResult]:
    wanted = _with_prerequisites(steps, selected)
    results: dict[int, StepResult] = {}
    for step in steps:
        if step.number not in wanted:
            continue
        blocked = [n for n in step.needs
                   if n in results and results[n].outcome != "passed" and not results[n].usable]
        if blocked:
            results[step.number] = StepResult(step, "", "not run",
                                              f"needs step {', '.join(map(str, blocked))}")
            continue
        session.say(f"step {step.number}: {step.title} ...")
        started = time.monotonic()
        try:
            components, detail = step.run(session)
            result = StepResult(step, components, "passed", detail)
        except StepFailed as failure:
            result = StepResult(step, failure.components, "FAILED", failure.detail,
                                logs=failure.logs, usable=failure.soft)
        except Exception as exc:  # a bug or an unexpected answer: the step fails, the rest go on
            result = StepResult(step, "", "FAILED", f"{type(exc).__name__}: {exc}",
                                logs=traceback.format_exc(limit=6))
        result.seconds = time.monotonic() - started
        session.say(f"step {step.number}: {result.outcome} ({result.seconds:.0f}s) "
                    f"{result.detail[:160]}")
        results[step.number] = result
    return [results[n] for n in sorted(results)]


def _with_prerequisites(steps: list[Step], selected: set[int] | None) -> set[int]:
    by_number = {s.number: s for s in steps}
    if not selected:
        return set(by_number)
    wanted: set[int] = set()
    pending = [n for n in selected if n in by_number]
    while pending:
        number = pending.pop()
        if number not in wanted:
            wanted.add(number)
            pending.extend(by_number[number].needs)
    return wanted
