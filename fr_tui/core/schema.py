"""The history's schema: every migration, in order (history.db's PRAGMA user_version
says how many have run). core/store.py runs them; each entry brings the schema from
version i to i+1. Never edit a released entry: add a new one.
"""

from __future__ import annotations

import re

# The batches table as migrations 1 and 2 left it: migration 3 rebuilds it from these.
_BATCH_COLUMNS_V2 = """
        id TEXT NOT NULL, profile TEXT, base_url TEXT, endpoint TEXT, input_path TEXT,
        input_sha256 TEXT, input_rows INTEGER, input_bytes INTEGER, input_file_id TEXT,
        status TEXT NOT NULL, request_total INTEGER, request_completed INTEGER,
        request_failed INTEGER, created_at INTEGER, in_progress_at INTEGER,
        finalizing_at INTEGER, completed_at INTEGER, failed_at INTEGER, expired_at INTEGER,
        cancelling_at INTEGER, cancelled_at INTEGER, expires_at INTEGER,
        output_file_id TEXT, error_file_id TEXT, output_path TEXT, error_path TEXT,
        usage_json TEXT, metadata_json TEXT, submitted_at REAL NOT NULL, last_polled_at REAL,
        name TEXT, parent_batch_id TEXT, errors_json TEXT, raw_json TEXT, cost REAL,
        poll_error TEXT, notified INTEGER NOT NULL DEFAULT 0"""
_BATCH_NAMES_V2 = ", ".join(re.findall(r"(\w+) (?:TEXT|INTEGER|REAL)", _BATCH_COLUMNS_V2))
_ORIGIN_V2 = """CASE
        WHEN profile = 'sandbox' THEN 'sandbox'
        WHEN base_url LIKE 'http://127.0.0.1:%'
             AND CAST(substr(base_url, 18) AS INTEGER) >= 32768 THEN 'sandbox'
        ELSE COALESCE(base_url, '') END"""
# The cost table's columns as migration 4 made them: migration 5 rebuilds it from these.
_COST_COLUMNS_V4 = """
        batch_id TEXT NOT NULL, model TEXT NOT NULL, provider TEXT,
        rows INTEGER NOT NULL DEFAULT 0, est_input_tokens INTEGER, est_input_tokens_raw INTEGER,
        est_output_tokens_low INTEGER, est_output_tokens_max INTEGER, est_cost_low TEXT,
        est_cost_high TEXT, price_source TEXT, ok_rows INTEGER, actual_input_tokens INTEGER,
        actual_output_tokens INTEGER, actual_output_median INTEGER, actual_cost TEXT,
        actual_cost_source TEXT, actual_at REAL"""
_COST_NAMES_V4 = ", ".join(re.findall(r"(\w+) (?:TEXT|INTEGER|REAL)", _COST_COLUMNS_V4))

# One server written two ways (`https://API.x:443`, `https://api.x`) is one origin
# (config.origin_for): histories written before that are brought to the one spelling.
# fr_origin is origin_for, given to every connection (see _connect). Where both spellings
# hold the same id, the row that is already right wins and the other keeps its spelling.
NORMALISE_ORIGINS = """
    UPDATE OR IGNORE batches SET origin = fr_origin(origin) WHERE origin <> fr_origin(origin);
    UPDATE intents SET origin = fr_origin(origin) WHERE origin <> fr_origin(origin);
    UPDATE OR IGNORE batch_models SET origin = fr_origin(origin)
        WHERE origin <> fr_origin(origin);
    UPDATE jobs SET origin = fr_origin(origin) WHERE origin <> fr_origin(origin);
"""

# Each entry brings the schema from version i to i+1. Never edit a released entry:
# add a new one.
MIGRATIONS: list[str] = [
    # 1: batches
    """
    CREATE TABLE batches (
        id TEXT PRIMARY KEY,
        profile TEXT,
        base_url TEXT,
        endpoint TEXT,
        input_path TEXT,
        input_sha256 TEXT,
        input_rows INTEGER,
        input_bytes INTEGER,
        input_file_id TEXT,
        status TEXT NOT NULL,
        request_total INTEGER,
        request_completed INTEGER,
        request_failed INTEGER,
        created_at INTEGER, in_progress_at INTEGER, finalizing_at INTEGER,
        completed_at INTEGER, failed_at INTEGER, expired_at INTEGER,
        cancelling_at INTEGER, cancelled_at INTEGER, expires_at INTEGER,
        output_file_id TEXT,
        error_file_id TEXT,
        output_path TEXT,
        error_path TEXT,
        usage_json TEXT,
        metadata_json TEXT,
        submitted_at REAL NOT NULL,
        last_polled_at REAL
    );
    CREATE INDEX batches_status ON batches(status);
    """,
    # 2: lineage, names, errors, cost, notification state, lost create answers
    """
    ALTER TABLE batches ADD COLUMN name TEXT;
    ALTER TABLE batches ADD COLUMN parent_batch_id TEXT;
    ALTER TABLE batches ADD COLUMN errors_json TEXT;
    ALTER TABLE batches ADD COLUMN raw_json TEXT;
    ALTER TABLE batches ADD COLUMN cost REAL;
    ALTER TABLE batches ADD COLUMN poll_error TEXT;
    ALTER TABLE batches ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX batches_parent ON batches(parent_batch_id);
    CREATE TABLE unknown_creates (
        rowid INTEGER PRIMARY KEY AUTOINCREMENT,
        profile TEXT,
        base_url TEXT,
        input_file_id TEXT NOT NULL,
        input_path TEXT,
        endpoint TEXT,
        metadata_json TEXT,
        message TEXT,
        created_at REAL NOT NULL,
        resolved_batch_id TEXT,
        forgotten INTEGER NOT NULL DEFAULT 0
    );
    """,
    # 3: records keyed by (origin, id); create intents replace unknown_creates. SQLite
    # cannot change a primary key, so the table is rebuilt. origin: "sandbox" for the
    # embedded sandbox (its loopback port changes every run: profile "sandbox", or a
    # 127.0.0.1 address on an ephemeral port, the only kind it ever had), else the base URL.
    f"""
    CREATE TABLE batches_v3 (
        origin TEXT NOT NULL,
        {_BATCH_COLUMNS_V2},
        output_verified_bytes INTEGER,
        error_verified_bytes INTEGER,
        PRIMARY KEY (origin, id)
    );
    INSERT INTO batches_v3 (origin, {_BATCH_NAMES_V2})
        SELECT {_ORIGIN_V2}, {_BATCH_NAMES_V2} FROM batches ORDER BY rowid;
    DROP TABLE batches;
    ALTER TABLE batches_v3 RENAME TO batches;
    CREATE INDEX batches_status ON batches(status);
    CREATE INDEX batches_parent ON batches(origin, parent_batch_id);
    CREATE INDEX batches_sha ON batches(input_sha256);
    CREATE TABLE intents (
        token TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        profile TEXT,
        input_path TEXT,
        input_sha256 TEXT,
        input_bytes INTEGER,
        rows INTEGER,
        endpoint TEXT,
        metadata_json TEXT,
        name TEXT,
        parent_batch_id TEXT,
        state TEXT NOT NULL,
        input_file_id TEXT,
        batch_id TEXT,
        message TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        job_id TEXT,
        job_part INTEGER,
        job_round INTEGER
    );
    CREATE INDEX intents_state ON intents(state);
    CREATE INDEX intents_sha ON intents(input_sha256);
    CREATE INDEX intents_job ON intents(job_id);
    INSERT INTO intents (token, origin, profile, input_path, endpoint, metadata_json, state,
                         input_file_id, message, created_at, updated_at)
        SELECT lower(hex(randomblob(8))), {_ORIGIN_V2}, profile, input_path, endpoint,
               metadata_json, 'unknown', input_file_id, message, created_at, created_at
        FROM unknown_creates WHERE resolved_batch_id IS NULL AND forgotten = 0;
    DROP TABLE unknown_creates;
    """,
    # cost (issue 12): each batch's estimate per model at submit, and what it really
    # used and cost once its results are read (core/costlog.py). Amounts are Decimal
    # text, never floats.
    """
    CREATE TABLE batch_models (
        batch_id TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT,
        rows INTEGER NOT NULL DEFAULT 0,
        est_input_tokens INTEGER,
        est_input_tokens_raw INTEGER,
        est_output_tokens_low INTEGER,
        est_output_tokens_max INTEGER,
        est_cost_low TEXT,
        est_cost_high TEXT,
        price_source TEXT,
        ok_rows INTEGER,
        actual_input_tokens INTEGER,
        actual_output_tokens INTEGER,
        actual_output_median INTEGER,
        actual_cost TEXT,
        actual_cost_source TEXT,
        actual_at REAL,
        PRIMARY KEY (batch_id, model)
    );
    CREATE INDEX batch_models_model ON batch_models(model, actual_at);
    """,
    # cost rows keyed by (origin, batch_id, model), like the records they belong to (two
    # servers may hand out the same id). A row takes the origin of the one record with its
    # id; a row whose id is on several servers (it mixed their figures) or on none (a
    # forgotten batch) gets origin '': shown for no batch and learnt from by no server.
    f"""
    ALTER TABLE batch_models RENAME TO batch_models_v4;
    DROP INDEX batch_models_model;
    CREATE TABLE batch_models (
        origin TEXT NOT NULL, {_COST_COLUMNS_V4}, PRIMARY KEY (origin, batch_id, model)
    );
    INSERT INTO batch_models (origin, {_COST_NAMES_V4})
        SELECT COALESCE((SELECT MIN(b.origin) FROM batches b WHERE b.id = m.batch_id
                         HAVING COUNT(*) = 1), ''), {_COST_NAMES_V4}
        FROM batch_models_v4 m ORDER BY m.rowid;
    DROP TABLE batch_models_v4;
    CREATE INDEX batch_models_model ON batch_models(model, actual_at);
    """,
    # jobs (issue 11): a dataset run to done as one unit (core/jobs.py). A job's parts
    # per round, each with the batch of its latest attempt; every attempt's create is an
    # intent (intents.job_id/job_part/job_round), so the intents hold the full history.
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        profile TEXT,
        base_url TEXT,
        name TEXT,
        input_path TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        input_bytes INTEGER,
        endpoint TEXT,
        settings_json TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        round INTEGER NOT NULL DEFAULT 1,
        total INTEGER,
        ok INTEGER,
        failed INTEGER,
        missing INTEGER,
        left_json TEXT,
        output_path TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        estimate_low TEXT,
        estimate_high TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    );
    CREATE INDEX jobs_content ON jobs(origin, input_sha256);
    CREATE TABLE job_parts (
        job_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        part INTEGER NOT NULL,
        file TEXT NOT NULL,
        first_row INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        tokens INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        batch_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        alone INTEGER NOT NULL DEFAULT 0,
        parent_part INTEGER,
        note TEXT,
        PRIMARY KEY (job_id, round, part)
    );
    CREATE INDEX job_parts_batch ON job_parts(batch_id);
    """,
    # origins in one spelling (above)
    NORMALISE_ORIGINS,
    # a submit's estimate (per model, JSON) is kept with its intent from before the
    # upload, and becomes the batch's estimate in the transaction that records the batch
    "ALTER TABLE intents ADD COLUMN estimate_json TEXT",
    # a job keeps its input's signature from when it was hashed: while the file keeps
    # it, planning does not hash the file again (input_bytes is its size)
    """
    ALTER TABLE jobs ADD COLUMN input_mtime_ns INTEGER;
    ALTER TABLE jobs ADD COLUMN input_inode INTEGER;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
