"""Counting what a unit of work costs the database: statements, transactions, round trips.

:class:`StatementCounter` listens to an engine's SQLAlchemy events while it is installed and
counts, per statement verb, what the process sent. A *round trip* is one request/response with
the server:

- every statement (``SELECT``, ``INSERT``, ``UPDATE``, ...; on SQLite also the ``BEGIN
  IMMEDIATE`` the engine emits itself, ``db/session.py``);
- on Postgres, a transaction's ``BEGIN`` (psycopg sends it before the transaction's first
  statement, a round trip of its own) and its ``COMMIT`` or ``ROLLBACK``; a connection in
  autocommit (the read sessions) has neither. In a pipelined transaction (``db/session.py``) the
  ``BEGIN`` goes out with the first statement and a deferred statement with the next one, so
  neither counts;
- on SQLite, the ``COMMIT`` or ``ROLLBACK`` of a transaction that began.

Not counted: the idle-connection ping at checkout (only after a second idle, ``db/session.py``)
and whatever a driver does on connect. The benchmark (``benchmarks/bench_pipeline.py``) and the
statement-count test of the hot path use it; it costs one event callback per statement, so it is
meant for measurement, not for production.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from hera_router.db.session import DEFERRED_OPTION, PIPELINED_OPTION

_STARTED = "hera_counting_started"


@dataclass
class Counts:
    """What was sent: statements by verb, transactions, and the round trips they took."""

    statements: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    """Write transactions (not autocommit) that ran at least one statement."""
    round_trips: int = 0

    @property
    def total_statements(self) -> int:
        return sum(count for verb, count in self.statements.items() if verb not in ("BEGIN",))

    def per(self, hops: int) -> dict[str, float]:
        """Per hop: statements (all, and by verb), transactions and round trips."""
        if hops <= 0:
            return {}
        out = {"statements": self.total_statements / hops, "transactions": self.transactions / hops}
        out["round_trips"] = self.round_trips / hops
        out.update({f"{verb.lower()}": count / hops for verb, count in sorted(self.statements.items())})
        return out


def _verb(statement: str) -> str:
    head = statement.lstrip().split(None, 1)
    verb = head[0].upper() if head else "?"
    return "WITH" if verb == "WITH" else verb


class StatementCounter:
    """Counts statements and round trips on ``engine`` while installed (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.counts = Counts()
        self._lock = threading.Lock()
        self._postgres = engine.dialect.name == "postgresql"

    def _autocommit(self, conn: Connection) -> bool:
        dbapi = conn.connection.dbapi_connection
        return bool(getattr(dbapi, "autocommit", False)) if self._postgres else False

    def _before(
        self, conn: Connection, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool
    ) -> None:
        verb = _verb(statement)
        options = context.execution_options if context is not None else {}
        pipelined = self._postgres and bool(options.get(PIPELINED_OPTION))
        with self._lock:
            self.counts.statements[verb] += 1
            if not (pipelined and options.get(DEFERRED_OPTION)):
                self.counts.round_trips += 1  # a deferred one rides with the next statement or COMMIT
            if verb == "BEGIN":
                return
            if not conn.info.get(_STARTED) and not self._autocommit(conn):
                conn.info[_STARTED] = True
                self.counts.transactions += 1
                if self._postgres and not pipelined:
                    self.counts.round_trips += 1  # psycopg's implicit BEGIN (pipelined: with this statement)

    def _end(self, conn: Connection) -> None:
        if conn.info.pop(_STARTED, False):
            with self._lock:
                self.counts.round_trips += 1  # COMMIT or ROLLBACK

    def install(self) -> None:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)

    def uninstall(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)

    def snapshot(self) -> Counts:
        """A copy of the counts so far."""
        with self._lock:
            counts = self.counts
            return Counts(Counter(counts.statements), counts.transactions, counts.round_trips)

    def reset(self) -> Counts:
        """The counts so far; counting starts again from zero."""
        with self._lock:
            counts, self.counts = self.counts, Counts()
        return counts


@contextmanager
def counting(engine: Engine) -> Iterator[StatementCounter]:
    """Count statements and round trips on ``engine`` inside the block."""
    counter = StatementCounter(engine)
    counter.install()
    try:
        yield counter
    finally:
        counter.uninstall()
