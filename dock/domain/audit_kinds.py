"""Every kind of audit entry the dock writes: one list, so a kind cannot be misspelt,
renamed in one place only, or added without deciding whether headquarters hears of it
(``dock.reporting.events``: mapped to an event, or in ``NOT_REPORTED`` with its reason).

Pure, so the domain can name them. :meth:`dock.storage.audit.AuditLog.append` writes only
these (a member is stored as its plain value); entries already in a log are read as the
plain strings they were written as. The values are stored in hash-chained logs and
matched by tests and tools: never change one.
"""

from __future__ import annotations

from enum import StrEnum, unique


@unique
class AuditKind(StrEnum):
    """One kind of audit entry; the comment says what an entry of it records."""

    # --- custody, checks and the recorder itself
    CHECKOUT = "checkout"  # a recorder checked out to an officer (actor), custody opened
    CHECKOUT_REFUSED = "checkout_refused"  # a check-out refused, with the reasons' codes
    OVERRIDE = "override"  # a supervisor overrode failed checks for the check-out that follows
    CHECKIN = "checkin"  # a recorder docked again: its custody episode closed
    HANDOVER = "handover"  # the custodian signed the handover of their returned recorder
    HANDOVER_BY_OTHER = "handover_by_other"  # a recorder handed back by someone not its custodian
    HANDOVER_UNSIGNED = "handover_unsigned"  # nobody signed for a return in time (offload went on)
    HANDOVER_REFUSED = "handover_refused"  # a signature refused (wrong PIN, unknown badge), and why
    GRANT_EXPIRED = "grant_expired"  # a grant not taken in time: custody withdrawn (actor dock)
    GRANT_CANCELLED = "grant_cancelled"  # an officer cancelled their grant: custody withdrawn
    CHECKS = "checks"  # a slot's pre-shift check outcome, whenever it changed
    CLOCK_SET = "clock_set"  # the dock set a recorder's clock (drift before, offset after)
    CLOCK_NOT_SET = "clock_not_set"  # a recorder's clock left as it was, and why
    ENROL = "enrol"  # a recorder enrolled: a secret agreed with it
    DEVICE_FLAG = "device_flag"  # a recorder flagged lost, found, in maintenance or repaired
    SLOT_TEST = "slot_test"  # a person ran a slot's self-test or its LED, buzzer and screen test
    CONFIG = "config"  # the dock started with a configuration other than last time (digests)

    # --- officers and PINs
    OFFICER_ADD = "officer_add"  # an officer or supervisor added
    OFFICER_DISABLE = "officer_disable"  # an officer disabled
    OFFICER_ENABLE = "officer_enable"  # an officer enabled again
    PIN_LOCKED = "pin_locked"  # an officer number locked after too many wrong PINs
    PIN_UNLOCKED = "pin_unlocked"  # a supervisor unlocked an officer's PIN
    PIN_UNLOCK_REFUSED = "pin_unlock_refused"  # an unlock refused (supervisor not verified)

    # --- offload, erase and the archive
    OFFLOAD_START = "offload_start"  # an offload began: how many recordings and bytes
    OFFLOAD_FILE = "offload_file"  # one recording archived and verified (path, hashes)
    OFFLOAD_RETRY = "offload_retry"  # a recording read again after an integrity failure
    OFFLOAD_FAILED = "offload_failed"  # a recording (or the link) failed: left on the device
    OFFLOAD_REFUSED = "offload_refused"  # an offload not started (no room on the evidence disk)
    OFFLOAD_DONE = "offload_done"  # an offload ended: counts archived, erased, failed; the seal
    MASS_STORAGE_REFUSED = "mass_storage_refused"  # a mass-storage volume refused; protocol used
    SCANNER_HIT = "scanner_hit"  # the scanner flagged a recording: quarantined, not erased
    ARCHIVE_DAMAGED = "archive_damaged"  # an archived copy no longer matches: erase withheld
    ERASE_INTENT = "erase_intent"  # about to erase a verified recording from the recorder
    ERASE = "erase"  # a recording erased from the recorder
    ERASE_REFUSED = "erase_refused"  # the recorder refused to erase a recording: kept
    ERASE_SKIPPED = "erase_skipped"  # recordings not erased, grouped by reason
    SEAL = "seal"  # a BagIt package sealed (or re-sealed): its tag-manifest digest
    SEAL_FAILED = "seal_failed"  # a package could not be sealed (tried again later)
    SECOND_COPY = "second_copy"  # a second copy of a recording confirmed, and where
    PACKAGE_REPLICATED = "package_replicated"  # a sealed package verified at a replication target
    REPLICATION_FAILED = "replication_failed"  # an attempt to replicate a package failed, and why
    REPLICATION_RETRY = "replication_retry"  # a person made failed packages due again: who, which

    # --- deadlines and fixity
    DEADLINE_AT_RISK = "deadline_at_risk"  # a recorder (back or away) near its offload deadline
    DEADLINE_OVERDUE = "deadline_overdue"  # a recorder (back or away) past its offload deadline
    # a recorder not docked by the end of the shift it was checked out for (once per episode)
    RECORDER_NOT_RETURNED = "recorder_not_returned"
    FIXITY_CHECK = "fixity_check"  # a fixity check of the archive ran: its summary
    FIXITY_FAILURE = "fixity_failure"  # one archived file failed its fixity check

    # --- gaps in recording
    GAP_OPENED = "gap_opened"  # a gap in recording found: an item to explain
    GAP_EXPLAINED = "gap_explained"  # a supervisor accepted an account (once: closed an item)
    GAP_EXPLAIN_REFUSED = "gap_explain_refused"  # an explanation refused (not verified)
    GAP_ACCOUNT = "gap_account"  # an officer's own account of a gap
    GAP_ACCOUNT_REFUSED = "gap_account_refused"  # an account refused (not verified)
    GAP_RETURNED = "gap_returned"  # a supervisor returned an account to its officer, and why
    GAP_FILED = "gap_filed"  # the records keeper filed a reviewed item (001 art.19(2))
    GAP_STEP_REFUSED = "gap_step_refused"  # a step of an item refused (order, person), and why
    GAP_ALERT = "gap_alert"  # recording could not continue: the unit head told at once
    EVENT_LOG_PARTLY_READ = "event_log_partly_read"  # a recorder's event log read only in part

    # --- continuity of footage (no selective keeping, nothing inserted): an item each
    RECORDING_MISSING = "recording_missing"  # numbers missing from the device's sequence
    RECORDING_OUTSIDE_EPISODE = "recording_outside_episode"  # made outside any custody episode
    RECORDING_UNSIGNED = "recording_unsigned"  # no signature from a recorder that signs

    # --- retention: holds, purges, cases
    HOLD_PLACED = "hold_placed"  # a hold placed (recording, case, officer or episode)
    HOLD_RELEASED = "hold_released"  # a hold released
    HOLD_RELEASE_REFUSED = "hold_release_refused"  # a release refused, and why
    PURGE_INTENT = "purge_intent"  # recordings about to be purged from one package
    PURGE = "purge"  # recordings purged (the package re-sealed or removed)
    PURGE_FAILED = "purge_failed"  # a purge not finished (the next run goes on)
    PURGE_REFUSED = "purge_refused"  # a purge refused (supervisors, clock), and why
    APPRAISAL_PROPOSED = "appraisal_proposed"  # recordings proposed for destruction, and why
    APPRAISAL_APPROVED = "appraisal_approved"  # another supervisor approved an appraisal
    APPRAISAL_REJECTED = "appraisal_rejected"  # a supervisor rejected an appraisal, and why
    APPRAISAL_REFUSED = "appraisal_refused"  # a step of an appraisal refused, and why
    ARCHIVE_HANDOVER = "archive_handover"  # a year's records handed to the archivist
    MAINTENANCE_DUE = "maintenance_due"  # a recorder's next maintenance date set or cleared
    CASE_ATTACH = "case_attach"  # a recording attached to a case
    CASE_ATTACH_REFUSED = "case_attach_refused"  # an attachment refused (not verified)
    CASE_OPEN = "case_open"  # a case's file opened or reopened (cause, party)
    CASE_CLOSE = "case_close"  # a case closed: its footage follows retention again
    CASE_EPISODE = "case_episode"  # a custody episode filed under a case before offload
    CASE_REFUSED = "case_refused"  # opening, closing or filing under a case refused, and why

    # --- access to footage
    ACCESS_REQUEST = "access_request"  # a request to view or copy recordings
    ACCESS_APPROVE = "access_approve"  # a supervisor approved a request
    ACCESS_REFUSE = "access_refuse"  # a supervisor refused a request
    ACCESS_DENIED = "access_denied"  # a step of access refused by the dock, and why
    ACCESS_RECORD = "access_record"  # a viewing or copying registered under a request
    ACCESS_EXPORT = "access_export"  # an export package (and disc image) written
    WORKING_COPY_REMOVED = "working_copy_removed"  # a view's/copy's file removed at its expiry
    CONFIDENTIAL_MARK = "confidential_mark"  # recordings or a case marked confidential
    CONFIDENTIAL_RELEASE = "confidential_release"  # a supervisor released such a mark

    # --- the audit log and headquarters
    AUDIT_EXPORT = "audit_export"  # the audit log exported to a file
    AUDIT_REWOUND = "audit_rewound"  # the log went backwards under the reporter
    HQ_COMMAND = "hq_command"  # a command from headquarters, accepted or refused

    # --- the web site (issue 12)
    WEB_LOGIN = "web_login"  # a person logged in to the site (actor: that person)
    WEB_LOGIN_REFUSED = "web_login_refused"  # a login refused (wrong PIN, disabled, locked)
    WEB_LOGOUT = "web_logout"  # a person logged out of the site
    WEB_TOKEN_ADD = "web_token_add"  # an API token for a machine made (its name and role)
    WEB_TOKEN_REVOKE = "web_token_revoke"  # an API token for a machine revoked


__all__ = ["AuditKind"]
