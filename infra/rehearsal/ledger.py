"""What the rehearsal changed, emulated itself, or left out: printed before and after the run.

The substitution list is the rehearsal's promise ("only endpoints are substituted"): anything
that differs from what the templates say is written here, once, and printed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Substitution:
    what: str
    deployed: str  # what the deployment would use
    rehearsed: str  # what the rehearsal uses instead


@dataclass
class Ledger:
    substitutions: list[Substitution] = field(default_factory=list)
    #: Behaviour of AWS that the rehearsal itself (not moto) reproduces.
    emulated: list[str] = field(default_factory=list)
    #: What is not emulated at all (with how it is covered instead, where it is).
    not_emulated: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def substitute(self, what: str, deployed: str, rehearsed: str) -> None:
        entry = Substitution(what, deployed, rehearsed)
        with self._lock:
            if entry not in self.substitutions:
                self.substitutions.append(entry)

    def emulate(self, what: str) -> None:
        with self._lock:
            if what not in self.emulated:
                self.emulated.append(what)

    def leave_out(self, what: str) -> None:
        with self._lock:
            if what not in self.not_emulated:
                self.not_emulated.append(what)
