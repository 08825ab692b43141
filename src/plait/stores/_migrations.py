"""The SQL stores' schema, written once: an ordered list of migrations per database.

A migration's position (1-based) is the schema version it brings a database to; each store
applies the ones its database lacks when it opens (SQLite keeps the version in
``PRAGMA user_version``, PostgreSQL in the ``plait_schema_version`` table; see their modules).
Append new scripts; never edit one that has shipped.

Both databases get the same tables from the same text, with a few words filled in per dialect
(:data:`SQLITE` and :data:`POSTGRES`): the type of floats (``{real}``), of bytes (``{blob}``),
of booleans (``{boolean}``), and how rows are numbered in the order they were first written
(``{event_seq}``, ``{request_seq}``): SQLite numbers every row already (its ``rowid``), so only
PostgreSQL adds an identity column to input and run requests. JSON is kept as ``TEXT`` in both:
``JSONB`` would reject ``NaN`` and rewrite numbers, and the backends must round-trip the same
values.
"""

from __future__ import annotations

__all__ = ["POSTGRES", "POSTGRES_MIGRATIONS", "SQLITE", "SQLITE_MIGRATIONS"]

#: The words each dialect fills into the shared scripts.
SQLITE = {
    "real": "REAL",
    "blob": "BLOB",
    "boolean": "INTEGER",
    "event_seq": "seq     INTEGER PRIMARY KEY",
    "request_seq": "",
}
POSTGRES = {
    "real": "DOUBLE PRECISION",
    "blob": "BYTEA",
    "boolean": "BOOLEAN",
    "event_seq": "seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    "request_seq": "seq BIGINT GENERATED ALWAYS AS IDENTITY,  -- the order of first requests",
}

_SHARED: tuple[str, ...] = (
    # 1: runs, their tasks, questions and event log
    """
    CREATE TABLE runs (
        run_id           TEXT PRIMARY KEY,
        workflow         TEXT NOT NULL,
        fingerprint      TEXT NOT NULL,
        definition       TEXT NOT NULL,  -- JSON
        config           TEXT NOT NULL,  -- JSON
        status           TEXT NOT NULL,
        owner            TEXT,
        lease_expires_at {real},
        created_at       {real} NOT NULL,
        updated_at       {real} NOT NULL,
        finished_at      {real},
        error            TEXT
    );
    CREATE INDEX runs_newest_first ON runs (created_at DESC, run_id DESC);
    CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);

    CREATE TABLE tasks (
        run_id      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        output      {blob},
        error       TEXT,  -- JSON {{"type", "message", "traceback"}}
        started_at  {real},
        finished_at {real},
        PRIMARY KEY (run_id, task_id)
    );

    CREATE TABLE input_requests (
        run_id       TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        key          TEXT NOT NULL,
        prompt       TEXT NOT NULL,
        schema       TEXT,  -- JSON
        requested_at {real} NOT NULL,
        deadline     {real},
        answered     {boolean} NOT NULL,
        value        {blob},
        answered_at  {real},
        {request_seq}
        PRIMARY KEY (run_id, task_id, key)
    );

    CREATE TABLE events (
        {event_seq},
        run_id  TEXT NOT NULL,
        kind    TEXT NOT NULL,
        task_id TEXT,
        time    {real} NOT NULL,
        data    TEXT NOT NULL  -- JSON
    );
    CREATE INDEX events_by_run ON events (run_id, seq);
    """,
    # 2: how to import the run's workflow (a hint for `plait resume`)
    """
    ALTER TABLE runs ADD COLUMN target TEXT;
    """,
    # 3: the key of the last batch written to a run (WriteBatch.key), so a batch is applied once
    """
    ALTER TABLE runs ADD COLUMN last_batch TEXT;
    """,
    # 4: requests to a live run's owner (plait._requests), in the order sent (rowid or seq).
    """
    CREATE TABLE run_requests (
        run_id     TEXT NOT NULL,
        request_id TEXT NOT NULL,
        kind       TEXT NOT NULL,
        owner      TEXT NOT NULL,  -- the owner it is addressed to
        sent_at    {real} NOT NULL,
        sent_by    TEXT NOT NULL,
        data       TEXT NOT NULL,  -- JSON
        state      TEXT NOT NULL,  -- pending, taken, done
        taken_at   {real},
        done_at    {real},
        outcome    TEXT,
        {request_seq}
        PRIMARY KEY (run_id, request_id)
    );
    CREATE INDEX run_requests_pending ON run_requests (run_id, owner) WHERE state = 'pending';
    """,
    # 5: task logs, one row per attempt (see plait._logs)
    """
    CREATE TABLE task_logs (
        run_id  TEXT NOT NULL,
        task_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        lines   TEXT NOT NULL,  -- JSON [[number, time, stream, text], ...]
        PRIMARY KEY (run_id, task_id, attempt)
    );
    """,
    # 6: who answered and how (answered_by, answered_via), a question's default (shown in the
    # inbox), and the indexes of the pages of runs by workflow and of the inbox (only the open
    # questions; see _listing.py)
    """
    ALTER TABLE input_requests ADD COLUMN answered_by TEXT;
    ALTER TABLE input_requests ADD COLUMN answered_via TEXT;
    ALTER TABLE input_requests ADD COLUMN default_value {blob};
    CREATE INDEX runs_by_workflow ON runs (workflow, created_at DESC, run_id DESC);
    CREATE INDEX input_requests_open ON input_requests (deadline, requested_at)
        WHERE NOT answered;
    """,
    # 7: why a skipped task was skipped (plait.SkipCause)
    """
    ALTER TABLE tasks ADD COLUMN skip_cause TEXT;
    """,
    # 8: how long succeeded attempts ran, by workflow: the history learned estimates read
    # (plait._estimates). One row per task holding its latest 5 durations, s0 the newest: a
    # write shifts them along in the upsert itself (no read), and a run's start reads one row
    # per task, not one per attempt ever made (1,000 rows, not 20,000). And the W3C traceparent
    # of each traced run's first plait.run span (plait._tracing).
    """
    CREATE TABLE task_history (
        workflow TEXT NOT NULL,
        task_id  TEXT NOT NULL,
        function TEXT NOT NULL,  -- the latest, module:qualname
        s0       {real} NOT NULL,
        s1       {real},
        s2       {real},
        s3       {real},
        s4       {real},
        PRIMARY KEY (workflow, task_id)
    );
    CREATE TABLE run_traces (
        run_id        TEXT PRIMARY KEY,
        trace_context TEXT NOT NULL
    );
    """,
)

#: PostgreSQL only -- 9: cheaper writes. Every run that succeeds rewrites its tasks' history
#: rows: with pages half empty, the new version of a row fits beside the old one (a HOT update,
#: with no new index entry), which makes that upsert a third cheaper. A run's definition (750 kB
#: of JSON for 10,000 tasks) is compressed with lz4, several times faster than the default pglz,
#: where the server has it (PostgreSQL 14+ built with lz4); elsewhere it stays as it is.
_POSTGRES_9 = """
    ALTER TABLE task_history SET (fillfactor = 50);
    DO $$
    BEGIN
        EXECUTE 'ALTER TABLE runs ALTER COLUMN definition SET COMPRESSION lz4';
    EXCEPTION WHEN feature_not_supported OR syntax_error OR undefined_object THEN
        NULL;
    END
    $$;
"""

#: Both databases -- SQLite 9, PostgreSQL 10: the start of the attempt an event ends (folded
#: into that event when both are in one batch, see ``plait._recorder``) gets a column of its own,
#: ``started``, instead of a place in the JSON of the event's data, which keeps the attempt's
#: number: nearly every event of a busy run has one, and writing a float as JSON text (its
#: shortest ``repr``) was two thirds of what encoding an event's data cost the writer. Older
#: rows keep it in their JSON; reads give ``data["started"]`` from either.
_EVENT_STARTED = """
    ALTER TABLE events ADD COLUMN started {real};
"""

#: PostgreSQL only, with ``started`` in 10: one index on events, not two. A run's log is read by
#: ``(run_id, seq)`` (``events_by_run``), never by ``seq`` alone, yet ``seq`` had a primary key
#: of its own, a second B-tree to insert every row into. ``(run_id, seq)`` becomes the primary
#: key (``seq`` stays an identity: unique anyway): a quarter less of the server's time to append
#: a batch of events (COPY of 10,000 rows: about 3.0 -> 2.2 µs a row of backend CPU).
_POSTGRES_EVENT_KEY = """
    ALTER TABLE events DROP CONSTRAINT events_pkey;
    DROP INDEX events_by_run;
    ALTER TABLE events ADD PRIMARY KEY (run_id, seq);
"""

#: The SQLite store's migrations: the script at index ``i`` brings a file to version ``i + 1``.
SQLITE_MIGRATIONS: tuple[str, ...] = tuple(
    script.format(**SQLITE) for script in (*_SHARED, _EVENT_STARTED)
)

#: The PostgreSQL store's migrations: the script at index ``i`` brings a schema to version
#: ``i + 1``.
POSTGRES_MIGRATIONS: tuple[str, ...] = (
    *(script.format(**POSTGRES) for script in _SHARED),
    _POSTGRES_9,
    _EVENT_STARTED.format(**POSTGRES) + _POSTGRES_EVENT_KEY,
)
