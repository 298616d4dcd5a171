"""Training that yields the CPU to serving (``HERA_ESTIMATORS__TRAINING_PRIORITY``).

A LoRA fine-tune or a profiling run is hours of full-core work that nobody waits on; a routing
decision is a few milliseconds that every request waits on. On a machine they share, the kernel
should give the router the cores whenever it wants them and the training what is left. The
training thread therefore lowers its own CPU priority while it trains:

- ``nice`` (default): ``nice 19`` for the thread (scheduler weight 15 against a normal thread's
  1024): on an otherwise idle machine training runs at full speed; a router that wakes up
  preempts it, and while the cores are saturated training gets ~1.5 % of one, so it still ends.
- ``idle``: Linux ``SCHED_IDLE`` (weight 3): the thread runs only on cores no normal thread wants;
  under sustained full load training waits indefinitely (seen: a test's training starved for 15
  minutes behind two benchmarks), so it is opt-in.
- ``normal``: leave the priority alone (a dedicated training machine).

Only a training that runs on its process's main thread yields (a prefork training child, the
CLI). On any other thread (a ``threads`` pool, the embedded one-process deployment) it shares the
GIL with threads that serve requests; lowered, it could be starved while it holds the GIL and
stall them all (priority inversion), so there it trains at normal priority and says so in the log.

On Linux the policy and the nice value belong to the thread, and threads a thread starts inherit
them, so torch's intra-op workers, started by the training thread on its first parallel op, run
at the training's priority too. Raising the priority back needs privileges a worker usually lacks
(``RLIMIT_NICE``), so leaving the block restores it where the kernel allows and otherwise leaves
the thread low: the training worker is a ``-c 1 --max-tasks-per-child=1`` prefork child
(ops/systemd/hera-trainer.service) whose process ends after the run anyway.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Concatenate, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from hera_router.db.runtime import Runtime

log = logging.getLogger(__name__)

TrainingPriority = Literal["idle", "nice", "normal"]
NICEST = 19


def _thread_id() -> int:
    return threading.get_native_id()


def current_priority() -> tuple[int, int]:
    """(scheduling policy, nice value) of the calling thread."""
    tid = _thread_id()
    return os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)


def _apply(policy: int, nice: int) -> None:
    tid = _thread_id()
    os.sched_setscheduler(tid, policy, os.sched_param(0))
    os.setpriority(os.PRIO_PROCESS, tid, nice)


@contextmanager
def yielding_cpu(priority: TrainingPriority) -> Iterator[str]:
    """Run the block at ``priority``; yields what was applied (``idle``, ``nice`` or ``normal``)."""
    if priority == "normal" or not hasattr(os, "sched_setscheduler"):
        yield "normal"
        return
    if threading.current_thread() is not threading.main_thread():
        log.info("training: on a pool thread, so at normal priority (a lowered GIL holder would stall serving)")
        yield "normal"
        return
    before = current_priority()
    applied: str = priority
    try:
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            _apply(os.SCHED_IDLE, before[1])
        else:
            applied = "nice"
            _apply(before[0], NICEST)
    except OSError as exc:  # a sandbox that forbids it: train at normal priority, say so once
        log.warning("training: could not lower the CPU priority (%s); training at normal priority", exc)
        applied = "normal"
    try:
        yield applied
    finally:
        if applied != "normal":
            try:
                _apply(*before)
            except OSError:
                log.debug("training: the thread keeps its lowered priority (restoring needs privileges)")


P = ParamSpec("P")
R = TypeVar("R")


def yields_cpu(function: Callable[Concatenate[Runtime, P], R]) -> Callable[Concatenate[Runtime, P], R]:
    """Run a training entry point ``function(runtime, ...)`` at ``runtime``'s training priority."""

    @functools.wraps(function)
    def wrapper(runtime: Runtime, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with yielding_cpu(runtime.settings.estimators.training_priority):
            return function(runtime, *args, **kwargs)

    return wrapper
