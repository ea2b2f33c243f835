"""Ctrl-C in the CLI's async commands (``generate``, ``recipes preview``).

asyncio's own handling cancels the command's task at the first Ctrl-C and raises
KeyboardInterrupt wherever the loop happens to be at the second. Raised in the loop's own
machinery, that left the task's error unretrieved (a traceback after the command's message)
and, now and then, a process that never exited. Here the first Ctrl-C cancels the task, which
keeps what is finished and says where; a later one raises KeyboardInterrupt only in the
command's own code, as in any Python program (it may stop a file being written: the command
then names what holds the records), and otherwise cancels the task again. Either way the
command ends interrupted: KeyboardInterrupt once the loop is closed, exit 130. A command that
has kept what it could calls ``ignore_further_interrupts`` before it says so: one more Ctrl-C
must not cut that message short.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Coroutine
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


def run_interruptible(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with the Ctrl-C above."""
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)  # signals reach the main thread only
    interrupted = False

    async def guarded() -> T:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigint(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            again, interrupted = interrupted, True
            if again and asyncio.current_task(loop) is task:
                raise KeyboardInterrupt  # in the command's own code, never the loop's
            task.cancel()
            loop.call_soon_threadsafe(lambda: None)  # wakes a loop waiting on its selector

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            return await main
        except KeyboardInterrupt:
            raise asyncio.CancelledError from None  # a task ends cancelled, not with an error
        finally:
            if signal.getsignal(signal.SIGINT) is on_sigint:
                signal.signal(signal.SIGINT, previous)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise


def ignore_further_interrupts() -> None:
    """The interrupted command is only reporting now, and then exits: Ctrl-C is ignored."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
