"""Fast inserts of many rows: executemany on SQLite and MariaDB, COPY on PostgreSQL."""

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

# Tables whose ids the bulk path writes itself; PostgreSQL's sequences must follow.
SERIAL_TABLES = ("plans", "users", "orders", "esim_profiles", "payment_webhook_events", "refunds", "analytics_events")


class BulkWriter:
    """Writes row tuples straight through the driver, inside the session's transaction."""

    def __init__(self, session: Session, progress=None):
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.quote = session.get_bind().dialect.identifier_preparer.quote  # reserved words only (MySQL's `interval`)
        self.progress = progress

    def write(self, table: str, columns: list[str], chunks: Iterable[list[tuple]]) -> int:
        raw = self.session.connection().connection
        cursor = raw.cursor()
        written = 0
        try:
            for rows in chunks:
                if not rows:
                    continue
                self._write_chunk(cursor, table, columns, rows)
                written += len(rows)
                if self.progress is not None:
                    self.progress.update(len(rows))
        finally:
            cursor.close()
        return written

    def _write_chunk(self, cursor, table: str, columns: list[str], rows: list[tuple]) -> None:
        names = ", ".join(self.quote(column) for column in columns)
        table = self.quote(table)
        if self.dialect == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marker = "?" if self.dialect == "sqlite" else "%s"
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join([marker] * len(columns))})", rows)

    def finish(self) -> None:
        """Move PostgreSQL's id sequences past the ids written explicitly."""
        if self.dialect != "postgresql":
            return
        for table in SERIAL_TABLES:
            self.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
            )
