"""The dock database's schema (dock.db), in one place: every table, index, trigger and
column added since a first release, applied in order when a
:class:`~dock.storage.store.Store` opens the file (:mod:`common.sqlite_schema`: a backup
first when the file is of an older schema).

Each table has one owning module: the only one that writes it (named above each table
below). Other storage modules may read it in a join; nothing outside ``dock/storage``
touches SQL at all. The audit log's database is :mod:`dock.storage.audit`'s, the
reporting outbox's is :mod:`dock.reporting.outbox`'s: not here.

Every step is idempotent (``IF NOT EXISTS``, columns added only when missing), so a
database from any earlier release opens as today's. What such steps cannot do (SQLite
cannot change a CHECK constraint in place, nor drop or rename anything) is a numbered
migration in :data:`MIGRATIONS`, run once, in its own transaction, when ``PRAGMA
user_version`` is below its number; the database then says :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from common.sqlite_schema import Upgrade, migrate
from common.sqlite_schema import schema_state as read_schema_state

#: The schema this code writes, stored in ``PRAGMA user_version`` (0 before version 2:
#: the first release did not store it). 2: the roles maintenance and admin (issue 12).
#: 3: the roles keeper and oversight (issue 17).
SCHEMA_VERSION = 3

#: One step of the schema: run against the connection inside a write transaction.
Step = Callable[[sqlite3.Connection], None]

# --------------------------------------------------------------------------- Store's
# Owner of every table in this section: dock.storage.store (Store, with its parts
# store_officers and store_archive). ``archive.bag_id`` is written by
# dock.storage.evidence_tables.SealTable (claims, in the seal's transaction); holds,
# purges and deadlines read ``archive``, ``custody`` and ``case_links`` in joins.

OFFICERS = """CREATE TABLE IF NOT EXISTS officers (
    officer_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    badge TEXT UNIQUE,
    pin_salt BLOB NOT NULL,
    pin_hash BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'maintenance', 'admin',
                                       'keeper', 'oversight')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
)"""

# Tokens for machines that use the web site's API (``dock web-token add``): only the
# SHA-256 of each token is kept. Owner: dock.storage.store_officers.
WEB_TOKENS = """CREATE TABLE IF NOT EXISTS web_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'maintenance', 'admin',
                                       'keeper', 'oversight')),
    token_sha256 BLOB NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
)"""

DEVICES = """CREATE TABLE IF NOT EXISTS devices (
    serial TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    firmware TEXT NOT NULL,
    secret BLOB NOT NULL,
    enrolled_at REAL NOT NULL,
    lost INTEGER NOT NULL DEFAULT 0,
    maintenance INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT ''
)"""

# A secret agreed with a recorder by ENROL, kept before the recorder commits it (it
# does so when the dock authenticates with it): a dock killed in between finds it here.
PENDING_SECRETS = """CREATE TABLE IF NOT EXISTS pending_secrets (
    serial TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at REAL NOT NULL
)"""

# "One device per officer, one officer per device": two partial unique indexes over
# open custody rows, so the database itself refuses a second check-out.
CUSTODY = (
    """CREATE TABLE IF NOT EXISTS custody (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL REFERENCES devices(serial),
    officer_id TEXT NOT NULL REFERENCES officers(officer_id),
    slot_id TEXT NOT NULL,
    out_at REAL NOT NULL,
    taken_at REAL,
    in_at REAL,
    in_slot TEXT,
    override_by TEXT,
    override_reason TEXT
)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS one_open_custody_per_device
    ON custody(serial) WHERE in_at IS NULL""",
    """CREATE UNIQUE INDEX IF NOT EXISTS one_open_custody_per_officer
    ON custody(officer_id) WHERE in_at IS NULL""",
)

#: Added to ``custody``: ``withdrawn`` says why a grant ended before its recorder was
#: taken ("expired" or "cancelled"): the row is closed where it was granted, and it is
#: no custody episode (the recorder never left the dock).
CUSTODY_ADDED_COLUMNS = (("withdrawn", "TEXT"),)

DEVICE_STATUS = (
    """CREATE TABLE IF NOT EXISTS device_status (
    serial TEXT NOT NULL,
    at REAL NOT NULL,
    battery_percent INTEGER,
    battery_health_percent INTEGER,
    battery_cycles INTEGER,
    storage_free_bytes INTEGER,
    drift_before_s REAL,
    drift_after_s REAL,
    state TEXT
)""",
    "CREATE INDEX IF NOT EXISTS device_status_by_serial ON device_status(serial, at)",
)

#: Columns added to ``device_status`` since the table was first made.
DEVICE_STATUS_ADDED_COLUMNS = (("battery_temp_c", "REAL"),)

# Owner: dock.storage.maintenance_tables.SlotErrorTable. How often each slot's link
# failed, by kind (link, timeout, auth, protocol, refused): one row per slot and kind, so
# a bad contact failing every sweep adds to a count, not to the table.
SLOT_ERRORS = """CREATE TABLE IF NOT EXISTS slot_errors (
    slot_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_at REAL NOT NULL,
    last_at REAL NOT NULL,
    last_message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (slot_id, kind)
)"""

# Owner: dock.storage.vendor_table.VendorCameraTable. A camera of the vendor command set
# needs its password before it says its id, so the dock finds its enrolment (devices,
# serial = the id it states) by the USB serial it presents (docs/VENDOR-CAMERAS.md).
VENDOR_CAMERAS = """CREATE TABLE IF NOT EXISTS vendor_cameras (
    serial TEXT PRIMARY KEY,
    usb_serial TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL
)"""

# Owner: dock.storage.ums_table.UmsVolumeTable. A mass-storage camera identified by its
# file names says nothing once emptied: the volume serial it showed then names it again.
UMS_VOLUMES = """CREATE TABLE IF NOT EXISTS ums_volumes (
    volume_serial TEXT NOT NULL,
    model TEXT NOT NULL,
    serial TEXT NOT NULL,
    seen_at REAL NOT NULL,
    PRIMARY KEY (volume_serial, model, serial)
)"""

CASE_LINKS = """CREATE TABLE IF NOT EXISTS case_links (
    case_number TEXT NOT NULL,
    serial TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    attached_at REAL NOT NULL,
    attached_by TEXT NOT NULL,
    PRIMARY KEY (case_number, serial, recording_id)
)"""

# A case (or event) number's file: its cause (案由), the party subject to enforcement
# (执法对象) whose records are kept together across cases (一户式: 000 §14.2; 003 art.14),
# and whether it is open: footage attached to an open case is never purged (000 §14.4;
# 001 art.20). A case number attached before this table existed has no row: open.
# ``case_episodes``: a custody episode filed under a case before its footage is
# offloaded, so the archived names carry the case (001 art.19(4)) and the recordings
# are linked as they are archived.
CASES = (
    """CREATE TABLE IF NOT EXISTS cases (
    case_number TEXT PRIMARY KEY,
    cause TEXT NOT NULL DEFAULT '',
    party TEXT NOT NULL DEFAULT '',
    opened_at REAL NOT NULL,
    opened_by TEXT NOT NULL,
    closed_at REAL,
    closed_by TEXT
)""",
    "CREATE INDEX IF NOT EXISTS cases_by_party ON cases(party)",
    """CREATE TABLE IF NOT EXISTS case_episodes (
    case_number TEXT NOT NULL,
    custody_id INTEGER NOT NULL,
    attached_at REAL NOT NULL,
    attached_by TEXT NOT NULL,
    PRIMARY KEY (case_number, custody_id)
)""",
    "CREATE INDEX IF NOT EXISTS case_links_by_recording ON case_links(serial, recording_id)",
)

# Wrong PINs in a row per officer number, known or not (a stranger must not tell the
# two apart); locked_at set after PIN_TRIES of them, until a supervisor unlocks it.
PIN_FAILURES = """CREATE TABLE IF NOT EXISTS pin_failures (
    officer_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_at REAL NOT NULL,
    locked_at REAL
)"""

ARCHIVE = """CREATE TABLE IF NOT EXISTS archive (
    serial TEXT NOT NULL,
    recording_id TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    size INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    officer_id TEXT,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    archived_at REAL NOT NULL,
    erased_at REAL,
    second_copy_at REAL,
    second_copy_where TEXT,
    PRIMARY KEY (serial, recording_id)
)"""

#: Columns added to ``archive`` after its first release. Rows from before are
#: unsealed until a seal claims them (:mod:`dock.evidence.seals` adopts those an
#: earlier ``seal`` entry names).
ARCHIVE_ADDED_COLUMNS = (
    # The package (seals.id) the recording is sealed in; NULL: not yet.
    ("bag_id", "INTEGER"),
    # When the hash was taken where not at capture (a mass-storage recorder); NULL: capture.
    ("hash_taken", "TEXT"),
)

# --------------------------------------------------------------------------- seals
# Owner: dock.storage.evidence_tables.SealTable (for dock.evidence.seals).

SEALS = """CREATE TABLE IF NOT EXISTS seals (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL,
    bag TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('intent', 'made', 'audited')),
    tagmanifest_sha256 TEXT,
    payload_oxum TEXT,
    created_at REAL NOT NULL
)"""

# --------------------------------------------------------------------------- holds
# Owner: dock.storage.evidence_tables.HoldTable (for dock.evidence.holds). The
# triggers make holds release-only, so a slip in code cannot quietly lift a hold.

HOLDS = (
    """CREATE TABLE IF NOT EXISTS holds (
        id INTEGER PRIMARY KEY,
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        reference TEXT NOT NULL,
        placed_at REAL NOT NULL,
        placed_by TEXT NOT NULL,
        until REAL,
        released_at REAL,
        released_by TEXT,
        release_reason TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS holds_by_recording ON holds(serial, recording_id)",
    """CREATE TRIGGER IF NOT EXISTS holds_never_deleted BEFORE DELETE ON holds
    BEGIN SELECT RAISE(ABORT, 'holds are never deleted, only released'); END""",
    """CREATE TRIGGER IF NOT EXISTS holds_release_only BEFORE UPDATE ON holds
    WHEN OLD.released_at IS NOT NULL
      OR NEW.id IS NOT OLD.id OR NEW.serial IS NOT OLD.serial
      OR NEW.recording_id IS NOT OLD.recording_id OR NEW.kind IS NOT OLD.kind
      OR NEW.reference IS NOT OLD.reference OR NEW.placed_at IS NOT OLD.placed_at
      OR NEW.placed_by IS NOT OLD.placed_by OR NEW.until IS NOT OLD.until
      OR NEW.released_at IS NULL OR NEW.released_by IS NULL
      OR coalesce(NEW.release_reason, '') = ''
    BEGIN SELECT RAISE(ABORT, 'a hold changes only by one release with a reason'); END""",
)

#: Columns added to ``holds`` for holds on a scope (a database from before gets them
#: with the defaults: every earlier hold is on one recording, as it was).
HOLD_ADDED_COLUMNS = (
    ("scope", "TEXT NOT NULL DEFAULT 'recording'"),
    ("case_number", "TEXT"),
    ("officer_id", "TEXT"),
    ("from_at", "REAL"),
    ("to_at", "REAL"),
    ("custody_id", "INTEGER"),
)

#: After the scope columns: what a hold covers never changes either.
HOLDS_SCOPED = (
    """CREATE TRIGGER IF NOT EXISTS holds_scope_fixed BEFORE UPDATE ON holds
    WHEN NEW.scope IS NOT OLD.scope OR NEW.case_number IS NOT OLD.case_number
      OR NEW.officer_id IS NOT OLD.officer_id OR NEW.from_at IS NOT OLD.from_at
      OR NEW.to_at IS NOT OLD.to_at OR NEW.custody_id IS NOT OLD.custody_id
    BEGIN SELECT RAISE(ABORT, 'a hold changes only by one release with a reason'); END""",
    "CREATE INDEX IF NOT EXISTS holds_by_scope ON holds(scope, case_number, officer_id)",
)

# --------------------------------------------------------------------------- purges
# Owner: dock.storage.evidence_tables.PurgeTable (for dock.evidence.purging).
# ``purges`` is the permanent record of what was purged; ``purge_batches`` and
# ``purge_members`` the purges under way, one batch per package that loses
# recordings (a recording is in at most one batch). Triggers keep all three.

PURGES = (
    """CREATE TABLE IF NOT EXISTS purges (
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        sha256 BLOB NOT NULL,
        path TEXT NOT NULL,
        purged_at REAL NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_deleted BEFORE DELETE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purges_never_changed BEFORE UPDATE ON purges
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TABLE IF NOT EXISTS purge_batches (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        serial TEXT NOT NULL,
        seal_id INTEGER UNIQUE,
        old_bag TEXT,
        old_digest TEXT,
        new_bag TEXT,
        state TEXT NOT NULL CHECK (state IN ('intent', 'resealed', 'done')),
        actor TEXT NOT NULL,
        record TEXT NOT NULL,
        package_record BLOB,
        created_at REAL NOT NULL,
        done_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS purge_members (
        batch INTEGER NOT NULL REFERENCES purge_batches(id),
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS purge_batches_kept BEFORE DELETE ON purge_batches
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_batches_forward BEFORE UPDATE ON purge_batches
    WHEN OLD.state = 'done' OR NEW.record IS NOT OLD.record OR NEW.token IS NOT OLD.token
      OR NEW.seal_id IS NOT OLD.seal_id OR NEW.old_bag IS NOT OLD.old_bag
      OR NEW.new_bag IS NOT OLD.new_bag OR NEW.actor IS NOT OLD.actor
      OR NEW.package_record IS NOT OLD.package_record
      OR (OLD.state = 'resealed' AND NEW.state = 'intent')
    BEGIN SELECT RAISE(ABORT, 'a purge batch only moves forward'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_members_kept BEFORE DELETE ON purge_members
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS purge_members_fixed BEFORE UPDATE ON purge_members
    BEGIN SELECT RAISE(ABORT, 'purge records are permanent'); END""",
)

# --------------------------------------------------------------------------- appraisals
# Owner: dock.storage.retention_tables.AppraisalTable (for dock.evidence.appraisals).
# Destruction follows an approved appraisal (004 att.2 §6): a keeper or supervisor
# proposes recordings with a reason, a supervisor other than the proposer approves (or
# rejects) it once. Triggers keep both tables: never deleted, the proposal never changed,
# decided once, by someone else, and no recording added after it was proposed.

APPRAISALS = (
    """CREATE TABLE IF NOT EXISTS appraisals (
        id INTEGER PRIMARY KEY,
        proposed_by TEXT NOT NULL,
        proposed_at REAL NOT NULL,
        reason TEXT NOT NULL CHECK (reason <> ''),
        state TEXT NOT NULL DEFAULT 'proposed'
            CHECK (state IN ('proposed', 'approved', 'rejected')),
        decided_by TEXT,
        decided_at REAL,
        note TEXT,
        expires_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS appraisal_members (
        appraisal INTEGER NOT NULL REFERENCES appraisals(id),
        serial TEXT NOT NULL,
        recording_id TEXT NOT NULL,
        PRIMARY KEY (appraisal, serial, recording_id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS appraisals_kept BEFORE DELETE ON appraisals
    BEGIN SELECT RAISE(ABORT, 'appraisals are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS appraisals_decided_once BEFORE UPDATE ON appraisals
    WHEN OLD.state != 'proposed' OR NEW.state NOT IN ('approved', 'rejected')
      OR NEW.id IS NOT OLD.id OR NEW.proposed_by IS NOT OLD.proposed_by
      OR NEW.proposed_at IS NOT OLD.proposed_at OR NEW.reason IS NOT OLD.reason
      OR NEW.decided_by IS NULL OR NEW.decided_by = OLD.proposed_by
      OR NEW.decided_at IS NULL
    BEGIN
      SELECT RAISE(ABORT, 'an appraisal is decided once, by someone other than its proposer');
    END""",
    """CREATE TRIGGER IF NOT EXISTS appraisal_members_kept BEFORE DELETE ON appraisal_members
    BEGIN SELECT RAISE(ABORT, 'appraisals are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS appraisal_members_fixed BEFORE UPDATE ON appraisal_members
    BEGIN SELECT RAISE(ABORT, 'appraisals are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS appraisal_members_while_proposed
    BEFORE INSERT ON appraisal_members
    WHEN (SELECT state FROM appraisals WHERE id = NEW.appraisal) IS NOT 'proposed'
    BEGIN SELECT RAISE(ABORT, 'an appraisal lists its recordings when proposed'); END""",
    "CREATE INDEX IF NOT EXISTS appraisal_members_by_recording "
    "ON appraisal_members(serial, recording_id)",
)

# --------------------------------------------------------------------------- hand-overs
# Owner: dock.storage.retention_tables.ArchiveHandoverTable (for dock.evidence.yearly).
# Each yearly hand-over of a year's records to the unit's archivist (004 att.2 §7): who,
# when, where, the package's manifest digest; a second one of the same year is a re-issue.

ARCHIVE_HANDOVERS = (
    """CREATE TABLE IF NOT EXISTS archive_handovers (
        id INTEGER PRIMARY KEY,
        year INTEGER NOT NULL,
        handed_by TEXT NOT NULL,
        handed_at REAL NOT NULL,
        path TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        recordings INTEGER NOT NULL,
        reissue_of INTEGER REFERENCES archive_handovers(id)
    )""",
    """CREATE TRIGGER IF NOT EXISTS archive_handovers_kept BEFORE DELETE ON archive_handovers
    BEGIN SELECT RAISE(ABORT, 'hand-overs are permanent'); END""",
    """CREATE TRIGGER IF NOT EXISTS archive_handovers_fixed BEFORE UPDATE ON archive_handovers
    BEGIN SELECT RAISE(ABORT, 'hand-overs are permanent'); END""",
)

#: A maintenance due date per recorder (000 §14.1; 002 art.22): past it, the pre-shift
#: check refuses the recorder. NULL: none set (the [devices] interval may give one).
DEVICE_MAINTENANCE_COLUMNS = (("maintenance_due", "REAL"),)

# --------------------------------------------------------------------------- gaps
# Owner: dock.storage.evidence_tables.GapTable (for dock.evidence.gaps).

EXPLANATION_ITEMS = (
    """CREATE TABLE IF NOT EXISTS explanation_items (
    id INTEGER PRIMARY KEY,
    serial TEXT NOT NULL,
    officer_id TEXT NOT NULL,
    custody_id INTEGER,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    recording_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    opened_at REAL NOT NULL,
    closed_at REAL,
    closed_by TEXT,
    explanation TEXT,
    account TEXT,
    account_at REAL,
    UNIQUE (serial, kind, start_ms, recording_id)
)""",
    "CREATE INDEX IF NOT EXISTS explanation_items_by_officer "
    "ON explanation_items(officer_id, closed_at)",
)

#: Columns added to ``explanation_items`` since the table was first made.
EXPLANATION_ADDED_COLUMNS = (("account", "TEXT"), ("account_at", "REAL"))

#: The three steps of an item (001 art.19(2); dock/domain/explanations.py): the review
#: (accepted, or returned to the officer with a reason), the keeper's filing, and when the
#: at-once alert for recording that could not continue was raised (002 art.20).
EXPLANATION_WORKFLOW_COLUMNS = (
    ("reviewed_at", "REAL"), ("reviewed_by", "TEXT"),
    ("returned_at", "REAL"), ("returned_by", "TEXT"), ("return_reason", "TEXT"),
    ("filed_at", "REAL"), ("filed_by", "TEXT"), ("filing", "TEXT"),
    ("alerted_at", "REAL"),
)  # fmt: skip

# Where each episode's scan read the recorder's event log: the next episode reads on
# from there, so an honest long log is read in turns, within the client's bound.
EVENT_LOG_READS = """CREATE TABLE IF NOT EXISTS event_log_reads (
    serial TEXT NOT NULL,
    custody_id INTEGER NOT NULL,
    since INTEGER NOT NULL,
    next INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    read_at REAL NOT NULL,
    PRIMARY KEY (serial, custody_id)
)"""

# Owner: dock.storage.continuity_table.ContinuityTable (for dock.evidence.continuity).
# Per recorder, what the dock saw at its last docking: the highest recording number
# listed (a later hole below it is a recording deleted before docking), that
# recording's end, and whether the recorder signs (footage it did not sign is flagged).
CONTINUITY_MARKS = """CREATE TABLE IF NOT EXISTS continuity_marks (
    serial TEXT PRIMARY KEY,
    last_sequence INTEGER,
    last_end_ms INTEGER,
    signs INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
)"""

# --------------------------------------------------------------------------- access
# Owner: dock.storage.evidence_tables.AccessTable (for dock.evidence.access). The
# register is append-only: triggers refuse updates and deletes.

ACCESS = (
    """CREATE TABLE IF NOT EXISTS access_requests (
    id INTEGER PRIMARY KEY,
    requester TEXT NOT NULL,
    purpose TEXT NOT NULL,
    recordings TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('view', 'copy', 'export')),
    requested_at REAL NOT NULL,
    approved_by TEXT,
    approved_at REAL,
    refused_by TEXT,
    refused_at REAL,
    refused_reason TEXT,
    expires_at REAL
)""",
    """CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES access_requests(id),
    who TEXT NOT NULL,
    what TEXT NOT NULL,
    action TEXT NOT NULL,
    at REAL NOT NULL,
    place TEXT NOT NULL
)""",
    """CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access register is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
BEGIN SELECT RAISE(ABORT, 'the access register is append-only'); END""",
)

#: Columns added to ``access_requests`` (issue 17): who may run the request (an officer
#: number; NULL: the requester), and on what basis it stands ('approval', or 'oversight':
#: a supervisory body's direct access, 001 art.20(3), registered like any other).
ACCESS_ADDED_COLUMNS = (("extractor", "TEXT"), ("basis", "TEXT NOT NULL DEFAULT 'approval'"))

# Confidentiality marks (002 art.26; 003 art.20; 001 art.17(3)) on a recording or on a
# case's recordings. Owner: dock.storage.register_tables.ConfidentialTable (for
# dock.evidence.access). A mark is released (never deleted) by a supervisor.
CONFIDENTIAL_MARKS = """CREATE TABLE IF NOT EXISTS confidential_marks (
    id INTEGER PRIMARY KEY,
    serial TEXT,
    recording_id TEXT,
    case_number TEXT,
    category TEXT NOT NULL CHECK (category IN ('state_secret', 'commercial_secret',
                                               'personal_privacy')),
    reason TEXT NOT NULL,
    marked_by TEXT NOT NULL,
    marked_at REAL NOT NULL,
    released_by TEXT,
    released_at REAL,
    release_reason TEXT,
    CHECK (case_number IS NOT NULL OR (serial IS NOT NULL AND recording_id IS NOT NULL))
)"""


# Working copies (a view's or copy's files under <state_dir>/exports), one row per file,
# written BEFORE the file exists. Owner: dock.storage.working_copy_table.WorkingCopyTable
# (for dock.evidence.working_copies). A copy lives no longer than its request's approval:
# ``removing_at`` is the removal's intent, ``removed_at`` and ``outcome`` its record.
WORKING_COPIES = (
    """CREATE TABLE IF NOT EXISTS working_copies (
    id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES access_requests(id),
    action TEXT NOT NULL CHECK (action IN ('view', 'copy')),
    who TEXT NOT NULL,
    what TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL,
    made_at REAL NOT NULL,
    removing_at REAL,
    removed_at REAL,
    outcome TEXT
)""",
    """CREATE INDEX IF NOT EXISTS working_copies_present ON working_copies(request_id)
    WHERE removed_at IS NULL""",
)


# --------------------------------------------------------------------------- handovers
# Owner: dock.storage.handover_table.HandoverTable (for dock.evidence.handovers). The
# handover register (001 art.19(3): the officer signs the handover on return) is
# append-only: triggers refuse updates and deletes. ``handover_pending`` holds the returns
# still waiting for someone to sign (a row leaves it in the transaction that writes the
# register's row), so a daemon restarted meanwhile still records each return once.

HANDOVERS = (
    """CREATE TABLE IF NOT EXISTS handovers (
    id INTEGER PRIMARY KEY,
    custody_id INTEGER NOT NULL UNIQUE REFERENCES custody(id),
    serial TEXT NOT NULL,
    slot_id TEXT NOT NULL,
    custodian TEXT NOT NULL,
    returned_by TEXT,
    how TEXT NOT NULL CHECK (how IN ('badge', 'pin', 'none')),
    by_custodian INTEGER,
    docked_at REAL NOT NULL,
    at REAL NOT NULL
)""",
    """CREATE TRIGGER IF NOT EXISTS handovers_no_update BEFORE UPDATE ON handovers
BEGIN SELECT RAISE(ABORT, 'the handover register is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS handovers_no_delete BEFORE DELETE ON handovers
BEGIN SELECT RAISE(ABORT, 'the handover register is append-only'); END""",
    """CREATE TABLE IF NOT EXISTS handover_pending (
    custody_id INTEGER PRIMARY KEY REFERENCES custody(id),
    serial TEXT NOT NULL,
    slot_id TEXT NOT NULL,
    custodian TEXT NOT NULL,
    docked_at REAL NOT NULL,
    due_at REAL NOT NULL
)""",
)


# --------------------------------------------------------------------------- replication
# Owner: dock.storage.replication_table.ReplicationTable (for dock.evidence.replication).
# One row per sealed package and configured target, written before anything is sent
# (the intent), moved through its states by the engine: what is left survives restarts.

REPLICATION_QUEUE = (
    """CREATE TABLE IF NOT EXISTS replication_queue (
    seal_id INTEGER NOT NULL REFERENCES seals(id),
    target TEXT NOT NULL,
    bag TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'verifying', 'replicated',
                                         'failed', 'superseded')),
    sealed_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    file TEXT,
    file_offset INTEGER,
    bytes_done INTEGER NOT NULL DEFAULT 0,
    bytes_total INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    next_try REAL NOT NULL DEFAULT 0,
    verified_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (seal_id, target)
)""",
    "CREATE INDEX IF NOT EXISTS replication_by_state ON replication_queue(state, sealed_at)",
)


# --------------------------------------------------------------------------- statistics
# Read by dock.storage.stats_tables (the statistics page): every query over a period is
# a range on one of these, so it reads the period's rows, not the whole table.

STATS_INDEXES = (
    "CREATE INDEX IF NOT EXISTS custody_by_out_at ON custody(out_at)",
    "CREATE INDEX IF NOT EXISTS custody_by_in_at ON custody(in_at)",
    "CREATE INDEX IF NOT EXISTS custody_by_serial ON custody(serial, out_at)",
    "CREATE INDEX IF NOT EXISTS archive_by_serial_time ON archive(serial, archived_at)",
    "CREATE INDEX IF NOT EXISTS explanation_items_by_opened ON explanation_items(opened_at)",
)


# --------------------------------------------------------------------------- steps


def _sql(*statements: str) -> Step:
    def step(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return step


def _add_columns(table: str, columns: Sequence[tuple[str, str]]) -> Step:
    """Add the columns a table from an earlier release lacks."""

    def step(db: sqlite3.Connection) -> None:
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    return step


#: In order: each table as its first release created it, then what was added to it.
#: A numbered migration is appended here (and SCHEMA_VERSION raised) when one comes.
STEPS: tuple[Step, ...] = (
    _sql(OFFICERS, DEVICES, PENDING_SECRETS, *CUSTODY, *DEVICE_STATUS, CASE_LINKS),
    _sql(PIN_FAILURES, ARCHIVE),
    _add_columns("archive", ARCHIVE_ADDED_COLUMNS),
    _sql(SEALS),
    _sql(*HOLDS),
    _add_columns("holds", HOLD_ADDED_COLUMNS),
    _sql(*HOLDS_SCOPED),
    _sql(*PURGES),
    _sql(*APPRAISALS, *ARCHIVE_HANDOVERS),
    _add_columns("devices", DEVICE_MAINTENANCE_COLUMNS),
    _sql(*EXPLANATION_ITEMS, EVENT_LOG_READS),
    _add_columns("explanation_items", EXPLANATION_ADDED_COLUMNS),
    _add_columns("explanation_items", EXPLANATION_WORKFLOW_COLUMNS),
    _add_columns("custody", CUSTODY_ADDED_COLUMNS),
    _sql(*ACCESS),
    _sql(WEB_TOKENS),
    _sql(*STATS_INDEXES),
    _add_columns("device_status", DEVICE_STATUS_ADDED_COLUMNS),
    _sql(SLOT_ERRORS),
    _sql(*HANDOVERS),
    _add_columns("access_requests", ACCESS_ADDED_COLUMNS),
    _sql(CONFIDENTIAL_MARKS),
    _sql(CONTINUITY_MARKS),
    _sql(*CASES),
    _sql(*WORKING_COPIES),
    _sql(VENDOR_CAMERAS),
    _sql(UMS_VOLUMES),
    _sql(*REPLICATION_QUEUE),
)


def _officers_roles_widened(db: sqlite3.Connection) -> None:
    """Version 2: the officers table as created before it (role officer or supervisor
    only) rebuilt with the wider CHECK, rows unchanged (SQLite's documented way to change
    a constraint: a new table, copy, drop, rename; foreign keys are off meanwhile and
    checked before the commit)."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE name = 'officers'").fetchone()
    if row is None or "'maintenance'" in row[0]:
        return  # made by this code: already wide
    db.execute(OFFICERS.replace("IF NOT EXISTS officers", "officers_v2"))
    db.execute("INSERT INTO officers_v2 SELECT * FROM officers")
    db.execute("DROP TABLE officers")
    db.execute("ALTER TABLE officers_v2 RENAME TO officers")


def _rebuilt_with(table: str, create: str, marker: str) -> Step:
    """A step that rebuilds ``table`` from ``create`` unless its stored SQL already
    holds ``marker`` (made by this code), rows unchanged."""

    def step(db: sqlite3.Connection) -> None:
        row = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        if row is None or marker in row[0]:
            return
        db.execute(create.replace(f"IF NOT EXISTS {table}", f"{table}_rebuilt"))
        db.execute(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")

    return step


def _roles_keeper_oversight(db: sqlite3.Connection) -> None:
    """Version 3: officers and web tokens may hold the roles keeper and oversight."""
    _rebuilt_with("officers", OFFICERS, "'oversight'")(db)
    _rebuilt_with("web_tokens", WEB_TOKENS, "'oversight'")(db)


#: Numbered migrations: (version, step), each run once, in order, while foreign keys
#: are off (a table they point at may be rebuilt), each in its own transaction that
#: also sets ``user_version`` to its number (a kill in between resumes at the next).
MIGRATIONS: tuple[tuple[int, Step], ...] = (
    (2, _officers_roles_widened),
    (3, _roles_keeper_oversight),
)


def _every_step(db: sqlite3.Connection) -> None:
    for step in STEPS:
        step(db)


def apply(db: sqlite3.Connection, path: str | None = None) -> Upgrade:
    """Bring the database to this schema through :func:`common.sqlite_schema.migrate`:
    a backup first when it is behind, every step (idempotent, at every open), then the
    migrations it has not had, each in its own transaction; ``user_version`` says
    SCHEMA_VERSION after it. ``path``: the file (default: the connection's)."""
    if path is None:
        path = str(db.execute("PRAGMA database_list").fetchone()[2])
    return migrate(db, path, SCHEMA_VERSION, MIGRATIONS, every_open=_every_step)


def schema_state(path: str) -> tuple[int | None, int]:
    """(dock.db's schema version, this code's) read without writing (``dock check``)."""
    return read_schema_state(path, SCHEMA_VERSION)


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "STEPS", "Step", "apply", "schema_state"]
