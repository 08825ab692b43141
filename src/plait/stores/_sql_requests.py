"""Where the SQL stores write requests: the questions tasks ask of people (input requests, keyed
by ``(run_id, task_id, key)``), and the requests sent to a run's live owner through the store
(``run_requests``, keyed by ``(run_id, request_id)``; see ``plait._requests``).

How the owner *takes* its requests differs between the databases and lives in each backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._requests import RunRequest
from ._base import InputRequest
from ._sql import (
    _REQUEST_COLUMNS,
    _RUN_REQUEST_COLUMNS,
    Database,
    SQLBase,
)
from ._sql_rows import _request_record, _run_request_record, _run_request_row

__all__ = ["SQLRequests"]

_REQUEST_NAMES = ["run_id", *_REQUEST_COLUMNS.split(", ")]
_REQUEST_UPDATES = ",\n        ".join(
    f"{c} = excluded.{c}" for c in _REQUEST_NAMES[3:]
)  # not the key

# Writes a row of ``_request_rows``, replacing the request's row if it has one (an upsert keeps
# the row's place in the order requests were first made).
_UPSERT_REQUEST = f"""
    INSERT INTO input_requests (run_id, {_REQUEST_COLUMNS})
    VALUES ({", ".join("?" * len(_REQUEST_NAMES))})
    ON CONFLICT (run_id, task_id, key) DO UPDATE SET
        {_REQUEST_UPDATES}
"""

# Writes a row of ``_run_request_row`` unless the request has one (sent twice is sent once).
_INSERT_RUN_REQUEST = f"""
    INSERT INTO run_requests (run_id, {_RUN_REQUEST_COLUMNS})
    VALUES ({", ".join("?" * (1 + len(_RUN_REQUEST_COLUMNS.split(", "))))})
    ON CONFLICT (run_id, request_id) DO NOTHING
"""

_FINISH_REQUEST = """
    UPDATE run_requests SET state = ?, done_at = ?, outcome = ?
    WHERE run_id = ? AND request_id = ?
"""


class SQLRequests(SQLBase):
    """Input requests and requests to a live run, in an SQL store."""

    # -- questions to people ------------------------------------------------------------------

    def _write_requests(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert a batch's input requests (few: one statement each)."""
        if rows:
            db.executemany(self._q(_UPSERT_REQUEST), rows)

    def load_requests(self, run_id: str) -> list[InputRequest]:
        with self._read() as db:
            self._check_run(db, run_id)
            rows = db.execute(
                self._q(
                    f"SELECT {_REQUEST_COLUMNS} FROM input_requests WHERE run_id = ? "
                    f"ORDER BY {self._request_order}"
                ),
                (run_id,),
            ).fetchall()
        return [_request_record(row) for row in rows]

    # -- requests to a live run ---------------------------------------------------------------

    def send_request(self, run_id: str, request: RunRequest) -> None:
        with self._transaction() as db:
            self._check_run(db, run_id)
            db.execute(self._q(_INSERT_RUN_REQUEST), _run_request_row(run_id, request))

    def get_request(self, run_id: str, request_id: str) -> RunRequest | None:
        with self._read() as db:
            self._check_run(db, run_id)
            row = db.execute(
                self._q(
                    f"SELECT {_RUN_REQUEST_COLUMNS} FROM run_requests "
                    "WHERE run_id = ? AND request_id = ?"
                ),
                (run_id, request_id),
            ).fetchone()
        return None if row is None else _run_request_record(row)

    def _finish_requests(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write the outcomes of the requests a batch says the owner acted on."""
        if rows:
            db.executemany(self._q(_FINISH_REQUEST), rows)
