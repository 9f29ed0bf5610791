"""The database sink of the stream job: readings with their one-minute aggregates, and rejects, into PostgreSQL.

Built for Spark executors: one `DatabaseWriter` per partition task, cheap to construct (the connection
opens on the first write), no module-level state, so it survives fork and runs in any process.

How a batch of readings is stored (fastest idempotent way measured, see benchmarks/writer.py):
1. binary COPY straight into `sensor_data`, in one transaction. Almost every batch is new data, and
   this is the fast path (about half the speed of a COPY into an unlogged unindexed table).
2. If that hits the unique key (a replay after a crash or restart), the transaction is rolled back and
   the batch goes through a temporary table: COPY there, then `INSERT … SELECT … ON CONFLICT (sensor_id,
   time) DO NOTHING`, which stores the new rows and counts the others as duplicates.
3. In the same transaction, the one-minute aggregates of the rows it stored are merged into
   `sensor_data_1m` (storage/minutes.py): they never trail the readings and count each reading once.

Rules on the data (the stream job validates before; the writer refuses rather than store garbage):
- `time` must be timezone-aware: any offset is stored as the same instant in UTC. A naive timestamp is
  refused with `InvalidBatch`, never guessed: PySpark hands TimestampType to Python as naive *local*
  time, so taking naive values as UTC would shift them silently by the executor's offset.
- `raw_data` must be JSON text (`str`); PostgreSQL's own jsonb parser validates it (it also refuses
  what Python's json accepts and jsonb cannot hold: NaN, `\\u0000`). Invalid JSON, a value outside a
  check constraint or a missing value fails the whole batch with `InvalidBatch` naming the row; nothing
  of that batch is stored.

Failures: transient ones (connection refused or lost, server starting or shutting down,
`pg_terminate_backend`, serialization failure, deadlock) are retried with jittered backoff for at most
`retry_for_s`, each time re-running the whole batch in a fresh transaction on a fresh connection. A
commit whose outcome was unknown (connection lost during COMMIT) is therefore safe to repeat: every
write is idempotent, so each batch ends up stored exactly once. Permanent failures raise one
`StorageError` that names the cause and the fix.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import errors, sql
from psycopg.adapt import Dumper
from psycopg.pq import Format

from sensorpipe.clients.backoff import Backoff
from sensorpipe.config import PostgresSettings
from sensorpipe.contract.columns import READING_COLUMNS, REJECT_COLUMNS
from sensorpipe.contract.measurements import MEASUREMENTS
from sensorpipe.storage.errors import Role, StorageError, connection_error, not_preloaded, preload_error
from sensorpipe.storage.minutes import merge_minutes, minute_aggregates

__all__ = [
    "READING_TYPES",
    "DatabaseWriter",
    "InvalidBatch",
    "StorageError",
    "WriteResult",
    "is_transient",
    "reading_rows",
]

logger = logging.getLogger(__name__)

# PostgreSQL types of the contract's columns (contract/columns.py), in their order.
READING_TYPES = ("timestamptz", "text", *("float8" for _ in MEASUREMENTS), "jsonb", "text", "int4", "int8")
_REJECT_TYPES = ("text", "text", "bytea", "text", "int4", "int8", "int4")

Row = Sequence[Any]
T = TypeVar("T")
Batch: TypeAlias = "pa.Table | pa.RecordBatch | Iterable[Row]"

# SQLSTATEs worth a retry: connection exceptions (class 08), shutdown/restart of the server (57P0x),
# too many connections, serialization failure and deadlock (the transaction can simply run again).
_TRANSIENT_STATES = {"57P01", "57P02", "57P03", "53300", "40001", "40P01"}
_TRANSIENT_CLASSES = ("08",)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidBatch(StorageError):
    """The batch breaks the data contract (naive time, invalid JSON, out of range): nothing of it was stored."""


@dataclass(frozen=True)
class WriteResult:
    """What one batch did: rows stored, duplicates skipped, attempts; for readings, the minutes merged."""

    written: int
    skipped: int
    attempts: int
    minutes: int = 0


class RawJsonb(Dumper):
    """Binary jsonb from JSON text as it is: version byte 1, then the text, parsed by the server.

    psycopg's own jsonb dumper would serialise the `str` again, storing a JSON string instead of the
    object (the original stack's problem 6).
    """

    format = Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid  # a built-in type: the same oid on every server

    def dump(self, obj: Any) -> bytes:
        text: str = obj
        return b"\x01" + text.encode()


def _aware(value: object, index: int, column: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        kind = "a naive datetime" if isinstance(value, datetime) else type(value).__name__
        raise InvalidBatch(
            f"row {index}: {column} is {kind} ({value!r}); give timezone-aware datetimes (UTC or any offset):"
            " PySpark passes TimestampType as naive local time, use `.astimezone(timezone.utc)` or Arrow"
        )
    return value


def _checked_rows(rows: Iterable[Row]) -> list[Row]:
    """Rows in READING_COLUMNS order with an aware time and JSON text; the server validates the rest."""
    out = []
    for index, row in enumerate(rows):
        if len(row) != len(READING_COLUMNS):
            raise InvalidBatch(f"row {index} has {len(row)} values, expected {len(READING_COLUMNS)}: {READING_COLUMNS}")
        _aware(row[0], index, "time")
        if not isinstance(row[4], str):
            raise InvalidBatch(f"row {index}: raw_data is {type(row[4]).__name__}, expected the JSON text (str)")
        out.append(row)
    return out


def _arrow_rows(batch: pa.Table | pa.RecordBatch, columns: Sequence[str], time_column: str) -> list[Row]:
    """Arrow columns by name into rows; the time column must carry a time zone and comes out in UTC."""
    missing = [name for name in columns if name not in batch.schema.names]
    if missing:
        raise InvalidBatch(f"the Arrow batch lacks column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    values = []
    for name in columns:
        column = batch.column(name)
        if name == time_column:
            if not pa.types.is_timestamp(column.type) or column.type.tz is None:
                raise InvalidBatch(
                    f"{name} is {column.type}; give a timestamp with a time zone (timestamp[us, tz=UTC]):"
                    " naive timestamps are refused, not guessed"
                )
            values.append(_utc_datetimes(column))
        else:
            values.append(column.to_pylist())
    return list(zip(*values, strict=True))


def _utc_datetimes(column: pa.Array | pa.ChunkedArray) -> list[datetime | None]:
    """Aware UTC datetimes of a zoned timestamp column, exact to the microsecond.

    3.5x faster than `to_pylist`, which makes each datetime through the column's time zone object.
    """
    micros = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return [None if v is None else _EPOCH + timedelta(microseconds=v) for v in micros]


def reading_rows(batch: Batch) -> list[Row]:
    """A batch of readings (Arrow, or rows in READING_COLUMNS order) as checked rows ready for COPY."""
    if isinstance(batch, pa.Table | pa.RecordBatch):
        return _checked_rows(_arrow_rows(batch, READING_COLUMNS, "time"))
    return _checked_rows(batch)


def _readings_table(rows: Sequence[Row]) -> pa.Table:
    """Reading rows (READING_COLUMNS order, at least up to the measurements) as the Arrow columns
    `minute_aggregates` takes."""
    columns = {"time": pa.array([row[0] for row in rows], pa.timestamp("us", tz="UTC"))}
    columns["sensor_id"] = pa.array([row[1] for row in rows], pa.string())
    for index, measurement in enumerate(MEASUREMENTS, start=2):
        columns[measurement.name] = pa.array([row[index] for row in rows], pa.float64())
    return pa.table(columns)


def _without_nul(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def is_transient(error: BaseException) -> bool:
    """True when running the batch again later can succeed (see _TRANSIENT_STATES)."""
    if not isinstance(error, psycopg.Error):
        return False
    state = error.sqlstate
    if state is None:
        # Failures without a server answer: refused, reset, timed out, or a login the server refused.
        message = str(error)
        return isinstance(error, psycopg.OperationalError) and not any(
            text in message for text in ("password authentication failed", "does not exist", "no pg_hba.conf entry")
        )
    return state in _TRANSIENT_STATES or state.startswith(_TRANSIENT_CLASSES)


def explain(settings: PostgresSettings, role: Role, error: psycopg.Error) -> StorageError:
    """One sentence with the cause and the fix, for an error `is_transient` called permanent (or retried too long)."""
    if error.sqlstate is None and isinstance(error, psycopg.OperationalError):
        return StorageError(connection_error(settings, role, error))
    where = f"{settings.database} at {settings.host}:{settings.port}"
    message = error.diag.message_primary or str(error).strip() or type(error).__name__
    if isinstance(error, errors.UndefinedTable | errors.UndefinedColumn):
        return StorageError(f"{message} in {where}: run `sensorpipe db migrate`")
    if not_preloaded(error):
        return preload_error(settings)
    if isinstance(error, errors.InsufficientPrivilege):
        return StorageError(f"{message} in {where}: run `sensorpipe db migrate` (it grants the {role} role)")
    if error.sqlstate and error.sqlstate[:2] in {"22", "23"}:
        row = _copy_row(error)
        return InvalidBatch(f"the batch breaks the data contract: {message}{row}; nothing of it was stored")
    return StorageError(f"PostgreSQL {where} failed: {message}")


def _copy_row(error: psycopg.Error) -> str:
    """`in row N` of the batch, from the COPY context line (`COPY t, line N+1, column c: …`), if there is one."""
    for line in (error.diag.context or "").splitlines():
        found = re.match(r"COPY \S+, line (\d+)(, column (\w+))?", line)
        if found:
            column = f", column {found[3]}" if found[3] else ""
            return f" in row {int(found[1]) - 1} of the batch{column}"
    return ""


class DatabaseWriter:
    """Writes batches to PostgreSQL over one connection, as the writer role unless told otherwise.

    `before_commit` is for fault-injection tests: called with the connection inside every attempt's
    transaction, after the rows were sent and before COMMIT.
    """

    def __init__(
        self,
        settings: PostgresSettings,
        *,
        role: Role = "writer",
        retry_for_s: float = 60.0,
        backoff: Backoff | None = None,
        application_name: str = "sensorpipe-writer",
        connect_timeout_s: float = 5.0,
        before_commit: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.role = role
        self._dsn = settings.dsn(role=role)
        self.retry_for_s = retry_for_s
        self._backoff = backoff or Backoff(initial_s=0.1, max_s=5.0)
        self.application_name = application_name
        self.connect_timeout_s = connect_timeout_s
        self.before_commit = before_commit
        self._conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> DatabaseWriter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write_readings(self, batch: Batch) -> WriteResult:
        """Store readings once each and merge those stored into their minutes; rows already stored (same
        sensor_id and time) count as skipped and are not merged again."""
        rows = reading_rows(batch)
        table = batch if isinstance(batch, pa.Table | pa.RecordBatch) else _readings_table(rows)
        (written, skipped, minutes), attempts = self._retrying(lambda conn: self._readings(conn, rows, table))
        return WriteResult(written, skipped, attempts, minutes)

    def first_copies(self, batch: Batch) -> list[int]:
        """Indices of the rows of `batch` (readings) that `sensor_data` holds from these very Kafka records,
        one per (sensor_id, time), ascending.

        After `write_readings` skipped rows, this is what the lake may take so that it holds each reading
        once, as the database does: a replayed batch still owns its rows, while a reading the bridge
        forwarded twice (a crash before its MQTT acknowledgement) is owned by the copy stored first.
        """
        rows: list[Row] = [(n, row[1], row[0], row[6], row[7]) for n, row in enumerate(reading_rows(batch))]
        return self._retrying(lambda conn: self._first_copies(conn, rows))[0]

    def write_rejects(self, rejects: Iterable[Row]) -> WriteResult:
        """Dead-letter rows in REJECT_COLUMNS order; one already recorded (same Kafka record and element) is skipped.

        A NUL character in a text column (a `detail` quoting a bad value) becomes U+FFFD: PostgreSQL's text
        cannot hold it, and a reject must never fail its batch. The payload itself is kept byte for byte.
        """
        rows: list[Row] = [tuple(_without_nul(value) for value in row) for row in rejects]
        skip = sql.SQL("on conflict on constraint sensor_rejects_source do nothing")
        return self._run(lambda conn: self._staged(conn, "sensor_rejects", REJECT_COLUMNS, _REJECT_TYPES, rows, skip))

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            conn = psycopg.connect(
                self._dsn,
                application_name=self.application_name,
                connect_timeout=max(1, round(self.connect_timeout_s)),
            )
            conn.adapters.register_dumper(None, RawJsonb)
            self._conn = conn
        return self._conn

    def _run(self, attempt: Callable[[psycopg.Connection[Any]], tuple[int, int]]) -> WriteResult:
        (written, skipped), attempts = self._retrying(attempt)
        return WriteResult(written, skipped, attempts)

    def _retrying(self, attempt: Callable[[psycopg.Connection[Any]], T]) -> tuple[T, int]:
        """Run `attempt` in its own transaction until it commits, retrying transient failures until the deadline;
        returns its result and the number of attempts."""
        deadline = time.monotonic() + self.retry_for_s
        attempts = 0
        while True:
            attempts += 1
            try:
                conn = self._connection()
                result = attempt(conn)
                self._backoff.reset()
                return result, attempts
            except psycopg.Error as e:
                self._abandon()
                if not is_transient(e):
                    raise explain(self.settings, self.role, e) from e
                delay = self._backoff.next_delay()
                if time.monotonic() + delay > deadline:
                    cause = explain(self.settings, self.role, e)
                    raise StorageError(f"gave up after {attempts} attempts in {self.retry_for_s:.0f}s: {cause}") from e
                logger.warning("write failed (%s), attempt %d; retrying in %.1fs", str(e).strip(), attempts, delay)
                time.sleep(delay)

    def _abandon(self) -> None:
        """After any failure: roll back if the connection still works, else drop it for a fresh one."""
        if self._conn is None:
            return
        try:
            if not self._conn.broken:
                self._conn.rollback()
                return
        except psycopg.Error:
            pass
        self.close()

    def _commit(self, conn: psycopg.Connection[Any]) -> None:
        if self.before_commit is not None:
            self.before_commit(conn)
        conn.commit()

    def _readings(
        self, conn: psycopg.Connection[Any], rows: list[Row], table: pa.Table | pa.RecordBatch
    ) -> tuple[int, int, int]:
        """Fast path straight into sensor_data; on a duplicate, the idempotent path through a temp table.
        Either way the minutes of the rows stored are merged before the commit."""
        if not rows:
            return 0, 0, 0
        try:
            copy_rows(conn, sql.Identifier("sensor_data"), READING_COLUMNS, READING_TYPES, rows)
            minutes = merge_minutes(conn, minute_aggregates(pa.table(table)))
            self._commit(conn)
            return len(rows), 0, minutes
        except errors.UniqueViolation:
            conn.rollback()
        insert = _copied_in(conn, "sensor_data", READING_COLUMNS, READING_TYPES, rows)
        # The rows inserted come back as they were stored: of a reading the batch holds twice, the copy kept.
        returned = sql.SQL(", ").join(map(sql.Identifier, READING_COLUMNS[: 2 + len(MEASUREMENTS)]))
        stored = conn.execute(
            sql.SQL("{} on conflict (sensor_id, time) do nothing returning {}").format(insert, returned)
        ).fetchall()
        minutes = merge_minutes(conn, minute_aggregates(_readings_table(stored)))
        self._commit(conn)
        return len(stored), len(rows) - len(stored), minutes

    def _first_copies(self, conn: psycopg.Connection[Any], rows: list[Row]) -> list[int]:
        if not rows:
            return []
        stage = sql.Identifier("sensorpipe_stage_copies")
        conn.execute(
            sql.SQL(
                "create temp table if not exists {} (n int4, sensor_id text, time timestamptz,"
                " kafka_partition int4, kafka_offset int8) on commit delete rows"
            ).format(stage)
        )
        columns = ("n", "sensor_id", "time", "kafka_partition", "kafka_offset")
        copy_rows(conn, stage, columns, ("int4", "text", "timestamptz", "int4", "int8"), rows)
        found = conn.execute(
            sql.SQL(
                "select distinct on (c.sensor_id, c.time) c.n from {} c"
                " join sensor_data d on d.sensor_id = c.sensor_id and d.time = c.time"
                " where d.kafka_partition is not distinct from c.kafka_partition"
                " and d.kafka_offset is not distinct from c.kafka_offset"
                " order by c.sensor_id, c.time, c.n"
            ).format(stage)
        ).fetchall()
        conn.commit()
        return sorted(int(row[0]) for row in found)

    def _staged(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: list[Row],
        on_conflict: sql.Composable,
    ) -> tuple[int, int]:
        """COPY into a session temp table with `columns` of `table` (emptied at commit), then INSERT … SELECT."""
        if not rows:
            return 0, 0
        insert = _copied_in(conn, table, columns, types, rows)
        written = conn.execute(sql.SQL("{} {}").format(insert, on_conflict)).rowcount
        self._commit(conn)
        return written, len(rows) - written


def _copied_in(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], types: Sequence[str], rows: list[Row]
) -> sql.Composed:
    """COPY `rows` into a session temp table with `columns` of `table` (emptied at commit); the
    `INSERT INTO table … SELECT … FROM` it, for the caller to end with its conflict clause."""
    stage = sql.Identifier(f"sensorpipe_stage_{table}")
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    create = "create temp table if not exists {} on commit delete rows as select {} from {} with no data"
    conn.execute(sql.SQL(create).format(stage, cols, sql.Identifier(table)))
    copy_rows(conn, stage, columns, types, rows)
    return sql.SQL("insert into {} ({}) select {} from {}").format(sql.Identifier(table), cols, cols, stage)


def copy_rows(
    conn: psycopg.Connection[Any],
    table: sql.Identifier,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[Row],
) -> None:
    """Binary COPY of `rows` into `table`: the writer's fast path, and the ceiling benchmarks/writer.py measures."""
    statement = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
