-- A SQLite store written by plait before tagged JSON (schema version 1, outputs in plain JSON);
-- its workflow is legacy_flow.py. Made with sqlite3 .dump, plus the schema version.
PRAGMA user_version = 1;
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE runs (
        run_id           TEXT PRIMARY KEY,
        workflow         TEXT NOT NULL,
        fingerprint      TEXT NOT NULL,
        definition       TEXT NOT NULL,  -- JSON
        config           TEXT NOT NULL,  -- JSON
        status           TEXT NOT NULL,
        owner            TEXT,
        lease_expires_at REAL,
        created_at       REAL NOT NULL,
        updated_at       REAL NOT NULL,
        finished_at      REAL,
        error            TEXT
    );
INSERT INTO runs VALUES('legacy-run','legacy','708bb46b29b7fe54','[{"id":"produce","depends_on":[],"function":"legacy_flow:produce"},{"id":"gate","depends_on":["produce"],"function":"(pause only)"},{"id":"consume","depends_on":["produce","gate"],"function":"legacy_flow:consume"}]','{"max_concurrency":2,"task_timeout":300.0,"retry_failed_tasks":true,"max_retries":3,"retry_backoff":0.1,"retry_max_backoff":30.0,"retry_jitter":0.5,"fail_fast":false,"pools":{},"cancel_grace":5.0,"serializer":"json"}','paused',NULL,NULL,1795962147.3036870955,1795962147.310498476,NULL,NULL);
CREATE TABLE tasks (
        run_id      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        output      BLOB,
        error       TEXT,  -- JSON {"type", "message", "traceback"}
        started_at  REAL,
        finished_at REAL,
        PRIMARY KEY (run_id, task_id)
    );
INSERT INTO tasks VALUES('legacy-run','produce','succeeded',1,X'7b2270616972223a5b312c325d2c22636f756e7473223a7b2231223a337d2c226c6f6f6b735f746167676564223a7b22247475706c65223a5b312c325d7d7d',NULL,1795962147.3062920569,1795962147.3092732429);
INSERT INTO tasks VALUES('legacy-run','gate','waiting_for_input',0,NULL,NULL,NULL,NULL);
CREATE TABLE input_requests (
        run_id       TEXT NOT NULL,
        task_id      TEXT NOT NULL,
        key          TEXT NOT NULL,
        prompt       TEXT NOT NULL,
        schema       TEXT,  -- JSON
        requested_at REAL NOT NULL,
        deadline     REAL,
        answered     INTEGER NOT NULL,
        value        BLOB,
        answered_at  REAL,
        PRIMARY KEY (run_id, task_id, key)
    );
INSERT INTO input_requests VALUES('legacy-run','gate','','go?',NULL,1795962147.3093121051,NULL,0,NULL,NULL);
CREATE TABLE events (
        seq     INTEGER PRIMARY KEY,
        run_id  TEXT NOT NULL,
        kind    TEXT NOT NULL,
        task_id TEXT,
        time    REAL NOT NULL,
        data    TEXT NOT NULL  -- JSON
    );
INSERT INTO events VALUES(1,'legacy-run','RunStarted',NULL,1795962147.3062512874,'{"workflow":"legacy","tasks":3}');
INSERT INTO events VALUES(2,'legacy-run','TaskSucceeded','produce',1795962147.3092916011,'{"attempt":1,"started":1795962147.3063593}');
INSERT INTO events VALUES(3,'legacy-run','InputRequested','gate',1795962147.3093242645,'{"question":{"prompt":"go?","key":"","schema":null,"deadline":null}}');
INSERT INTO events VALUES(4,'legacy-run','RunFinished',NULL,1795962147.310281992,'{"status":"paused","error":null}');
CREATE INDEX runs_newest_first ON runs (created_at DESC, run_id DESC);
CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX events_by_run ON events (run_id, seq);
COMMIT;
