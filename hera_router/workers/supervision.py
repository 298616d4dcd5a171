"""Run a worker or beat so that a supervisor can tell "stopped" from "gave up", with quiet logs.

``Celery.worker_main`` drops the worker's exit code: it calls ``app.start``, which runs celery's
click command with ``standalone_mode=False``; click 8.5 then *returns* the code of
``ctx.exit(worker.exitcode)`` and ``worker_main`` discards it. A worker that stopped on an
unrecoverable error (``worker.stop(exitcode=EX_FAILURE)``) exited 0, so compose's and systemd's
restart-on-failure policies never restarted it (docs/research/issue16-kombu-redis-restart.md).
:func:`run_worker` keeps the ``WorkController`` from the ``worker_init`` signal and returns its
``exitcode``; the CLI exits with it.

It also sets the worker options that depend on how the worker runs, not on the app:

- ``worker_cancel_long_running_tasks_on_connection_loss`` only for pools that can kill a job
  (prefork, solo, gevent, eventlet). The threads pool cannot, and asking it to logged one
  ``TaskPool does not implement kill_job`` traceback per running task per broker drop.
- ``--without-gossip --without-mingle``: hera uses neither (state is in Postgres), and both
  logged errors on every broker drop. Heartbeats, task events and remote control (``ping``,
  Flower) stay on: Flower works from events and heartbeats, not from gossip.
- Database outages are logged once per outage (:mod:`hera_router.workers.outages`), also for
  celery's own per-attempt records.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from celery import signals

if TYPE_CHECKING:
    from hera_router.workers.app import HeraCelery

log = logging.getLogger(__name__)

POOLS_THAT_KILL_JOBS = frozenset({"prefork", "solo", "gevent", "eventlet", "processes"})
QUIET_FLAGS = ("--without-gossip", "--without-mingle")


def worker_argv(queues: str, concurrency: int, pool: str, log_level: str, extra: Sequence[str]) -> list[str]:
    """``celery worker`` arguments: the given options, task events on, gossip and mingle off."""
    argv = ["worker", "-Q", queues, "-c", str(concurrency), "-P", pool, "-E", "-l", log_level]
    argv += [flag for flag in QUIET_FLAGS if flag not in extra]
    return [*argv, *extra]


def configure_for_pool(app: HeraCelery, pool: str) -> None:
    """Options that depend on the pool (see the module docstring)."""
    cancel = pool in POOLS_THAT_KILL_JOBS
    app.conf.worker_cancel_long_running_tasks_on_connection_loss = cancel
    if not cancel:
        # Celery warns once per broker drop that the option will default to on in 6.0; it cannot
        # apply to a pool that has no way to cancel a job. Celery's logging setup re-enables its
        # own warnings ('always'), so the filter goes in after it.
        signals.celeryd_after_setup.connect(_ignore_cancel_on_loss_warning, weak=False)


def _ignore_cancel_on_loss_warning(**_: Any) -> None:
    from celery.exceptions import CPendingDeprecationWarning

    warnings.filterwarnings("ignore", category=CPendingDeprecationWarning, module=r"celery\.worker\.consumer")


def quiet_database_outages() -> None:
    """Route celery's per-attempt records about database errors into the outage log's count."""
    from sqlalchemy.exc import OperationalError

    from hera_router.workers.base import DATABASE, OUTAGES
    from hera_router.workers.outages import CountOutageFailures

    trace = logging.getLogger("celery.app.trace")
    if not any(isinstance(f, CountOutageFailures) for f in trace.filters):
        trace.addFilter(CountOutageFailures(OUTAGES, DATABASE, (OperationalError,)))


def run_worker(app: HeraCelery, queues: str, *, concurrency: int, pool: str, extra: Sequence[str] = ()) -> int:
    """Run ``celery worker`` on the physical ``queues`` until it stops; its exit code.

    ``extra`` goes to ``celery worker`` unchanged (e.g. ``-n router@%h``).
    """
    argv = worker_argv(queues, concurrency, pool, app.settings.log_level, extra)
    configure_for_pool(app, pool)
    quiet_database_outages()
    one_line_connection_errors("celery.worker.request")  # "Couldn't ack …" after a broker drop
    controllers: list[Any] = []

    def keep(sender: Any = None, **_: Any) -> None:
        controllers.append(sender)

    signals.worker_init.connect(keep, weak=False)
    try:
        app.worker_main(argv)
    finally:
        signals.worker_init.disconnect(keep)
    return exit_code(controllers[-1] if controllers else None)


def exit_code(controller: Any) -> int:
    """The process exit code for a stopped WorkController (None: it never started → 1)."""
    if controller is None:
        return 1
    code = getattr(controller, "exitcode", None)
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


class OneLineConnectionErrors(logging.Filter):
    """A broker connection error becomes one line, not a traceback (plus, for beat, a whole stack).

    Beat logs ``Message Error: <exc>\\n<formatted stack>`` with ``exc_info`` for every entry it
    cannot send while the broker is away (one per entry per tick); a threads-pool task that
    finishes after the connection dropped logs ``Couldn't ack …`` with a three-part traceback (the
    message is redelivered, the task is idempotent). The error itself is the information.
    ``message``, if given, replaces the record's text (``%s: %s`` get the error's type and text).
    """

    def __init__(self, message: str | None = None) -> None:
        super().__init__()
        self._message = message

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_connection_error(error):
            if self._message is not None:
                record.msg = self._message
                record.args = (type(error).__name__, str(error).splitlines()[0] if str(error) else "")
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


def one_line_connection_errors(logger_name: str, message: str | None = None) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, OneLineConnectionErrors) for f in logger.filters):
        logger.addFilter(OneLineConnectionErrors(message))


def _is_connection_error(error: BaseException) -> bool:
    from kombu.exceptions import OperationalError as BrokerOperationalError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, (BrokerOperationalError, ConnectionError, OSError)):
            return True
        if type(current).__name__ in {"ConnectionError", "TimeoutError", "AMQPConnectionError"}:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def run_beat(app: HeraCelery, argv: Sequence[str]) -> int:
    """Run ``celery beat`` with ``argv``; its connection errors are logged one line each."""
    one_line_connection_errors("celery.beat", "beat could not send a scheduled task, the broker is unreachable: %s: %s")
    result = app.start(list(argv))
    return result if isinstance(result, int) else 0
