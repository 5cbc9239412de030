"""Every request that changes the dock, by name: its service function and the checking
of its arguments (zigbee2mqtt's ``requestLookup`` is the model). The command line, the
commands from headquarters and the web pages all go through :func:`call`, so each rule
(what is checked, what is audited, in which transaction) exists once.

A request's arguments are a mapping of names to plain values (text, flags, numbers,
lists): what a parsed command line, a JSON payload or a form gives. Unknown names, a
missing required one or a wrong type are refused (:class:`RequestError`) before the
service runs; the service checks the rest (its own rules) and writes its audit entry
with its change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dock.domain.roles import ADMIN, KEEPER, MAINTENANCE, OFFICER, OVERSIGHT, SUPERVISOR
from dock.services import (
    access,
    appraisals,
    archive,
    audit,
    cases,
    custody,
    device_care,
    devices,
    gaps,
    handover_export,
    holds,
    maintenance,
    officers,
    purge,
    replication,
    web_tokens,
)
from dock.services.context import DockContext
from dock.services.errors import RequestError

# Who may make each request from a front end that logged a person in (the web site):
# the daemon refuses anyone whose roles hold none of a request's. The command line is
# run by the dock's Unix user, who may make every request, as before.
_ANYONE = (OFFICER, SUPERVISOR, MAINTENANCE, ADMIN)
_SUP = (SUPERVISOR,)
_SUP_ADMIN = (SUPERVISOR, ADMIN)
_CARE = (SUPERVISOR, MAINTENANCE, ADMIN)
#: Who may ask for footage and view or copy what a request names (REQUIREMENTS section 7).
_READERS = (OFFICER, SUPERVISOR, KEEPER, OVERSIGHT)


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return _int(v) or isinstance(v, float)


def _texts(v: Any) -> bool:
    return isinstance(v, list | tuple) and bool(v) and all(map(_text, v))


def _ints(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(map(_int, v))


#: The kind of an argument that names where the request writes.
PATH_KIND = "path"

#: What each kind of argument is, as said in a refusal.
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (_text, "text"),
    "flag": (_flag, "true or false"),
    "int": (_int, "a whole number"),
    "number": (_number, "a number"),
    "texts": (_texts, "a list of texts (at least one)"),
    "ints": (_ints, "a list of whole numbers"),
    "callable": (callable, "a function (from code, not from a person)"),
    #: A file or folder the request writes: from a logged-in session, only a new name
    #: inside the dock's exports folder (the daemon checks; see ``confined_paths``).
    PATH_KIND: (_text, "a path"),
}


@dataclass(frozen=True)
class Arg:
    name: str
    kind: str = "text"
    required: bool = False

    @property
    def names_a_path(self) -> bool:
        """A file or folder the request writes (confined for a logged-in person)."""
        return self.kind == PATH_KIND


def _args(*spec: str) -> tuple[Arg, ...]:
    """``"name"`` (optional text), ``"name*"`` (required), ``"name:kind"``."""
    out = []
    for s in spec:
        name, _, kind = s.partition(":")
        required = name.endswith("*")
        out.append(Arg(name.rstrip("*"), kind or "text", required))
    return tuple(out)


@dataclass(frozen=True)
class Request:
    name: str
    run: Callable[..., Any]  # run(dock, actor, **arguments)
    args: tuple[Arg, ...]
    summary: str
    #: The roles that may make this request through a logged-in session (one is enough).
    roles: tuple[str, ...]

    def allowed(self, roles: tuple[str, ...]) -> bool:
        """Whether a person holding ``roles`` may make this request."""
        return any(r in self.roles for r in roles)

    def check(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments as the service takes them (None for an optional one means
        not given), or RequestError naming the first problem."""
        known = {a.name: a for a in self.args}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise RequestError(f"{self.name}: unknown argument(s) {', '.join(unknown)}")
        out: dict[str, Any] = {}
        for a in self.args:
            value = given.get(a.name)
            if value is None:
                if a.required:
                    raise RequestError(f"{self.name}: {a.name} is required")
                continue
            test, what = KINDS[a.kind]
            if not test(value):
                raise RequestError(f"{self.name}: {a.name} must be {what}")
            out[a.name] = value
        return out


def _table(*requests: Request) -> dict[str, Request]:
    return {r.name: r for r in requests}


TABLE: dict[str, Request] = _table(
    Request("officer.add", officers.add,
            _args("officer_id*", "name*", "unit*", "pin*", "badge", "supervisor:flag", "role"),
            "register an officer (or a supervisor, maintenance or admin) with a PIN",
            _SUP_ADMIN),
    Request("officer.disable", officers.disable, _args("officer_id*"), "disable an officer",
            _SUP_ADMIN),
    Request("officer.enable", officers.enable, _args("officer_id*"), "enable an officer",
            _SUP_ADMIN),
    Request("officer.unlock", officers.unlock,
            _args("officer_id*", "supervisor*", "supervisor_pin*"),
            "a supervisor unlocks a locked PIN", _SUP_ADMIN),
    Request("device.enrol", devices.enrol, _args("slot*"), "enrol the recorder in a slot",
            (MAINTENANCE, ADMIN)),
    Request("device.enrol_vendor", devices.enrol_vendor, _args("slot*", "password*", "model"),
            "enrol a camera of the vendor command set with its password", (MAINTENANCE, ADMIN)),
    Request("device.flag", devices.flag,
            _args("serial*", "lost:flag", "maintenance:flag", "note"),
            "flag a recorder lost or found, in maintenance or repaired", _CARE),
    Request("device.maintenance_due", device_care.set_due, _args("serial*", "due*"),
            "set (or clear: none) the date a recorder's maintenance falls due", _CARE),
    Request("slot.self_test", maintenance.self_test, _args("slot*"),
            "inspect a slot now: the recorder's self-test and every check", (MAINTENANCE, ADMIN)),
    Request("slot.indicator_test", maintenance.indicator_test, _args("slot*"),
            "show a slot's LED patterns, beep and a test line on the screen",
            (MAINTENANCE, ADMIN)),
    Request("device.offload", devices.offload, _args("slot*", "progress:callable"),
            "offload, verify, seal and erase a docked recorder now", _CARE),
    Request("custody.checkout", custody.checkout,
            _args("officer", "pin", "badge", "supervisor", "supervisor_pin", "reason"),
            "check a recorder out to an officer", _ANYONE),
    Request("custody.cancel_grant", custody.cancel_grant, _args("officer", "pin", "badge"),
            "an officer cancels their own grant whose recorder is still in its slot", _ANYONE),
    Request("custody.handover", custody.handover, _args("slot*", "officer*", "pin*"),
            "whoever returned a docked recorder signs the handover (number and PIN)", _ANYONE),
    Request("custody.handover_badge", custody.handover_badge, _args("slot*"),
            "the next badge read signs the handover of the recorder in a slot", _ANYONE),
    Request("case.attach", cases.attach,
            _args("case*", "recordings*:texts", "officer*", "pin*"),
            "file archived recordings under a case", (OFFICER, SUPERVISOR)),
    Request("case.open", cases.open_case,
            _args("case*", "officer*", "pin*", "cause", "party"),
            "open or reopen a case (cause, party): its footage is kept", (OFFICER, SUPERVISOR)),
    Request("case.close", cases.close_case, _args("case*", "officer*", "pin*"),
            "close a case: its footage follows retention again", _SUP),
    Request("case.episode", cases.attach_episode, _args("case*", "officer*", "pin*"),
            "file the recorder an officer carries now under a case", (OFFICER, SUPERVISOR)),
    Request("archive.confirm_copy", archive.confirm_copy,
            _args("serial*", "recording*", "where*"),
            "a second copy exists: the recorder may erase the recording", _SUP),
    Request("replication.retry", replication.retry, _args("package", "all_failed:flag"),
            "failed replications to central storage tried again now", _CARE),
    Request("archive.verify", archive.verify, _args("sample:number", "progress:callable"),
            "fixity check of the archive (audited)", _CARE),
    Request("archive.handover", handover_export.handover_year, _args("year*:int", "to*:path"),
            "the year's records handed to the archivist: a verifiable package, audited",
            (SUPERVISOR, KEEPER)),
    Request("audit.export", audit.export, _args("path*:path"),
            "a signed copy of the audit log for a supervisor", _SUP_ADMIN),
    Request("hold.add", holds.place,
            _args("kind*", "reference*", "serial", "recording", "case", "officer",
                  "date_from", "date_to", "episode:int", "until"),
            "keep a recording, a case's, an officer's or an episode's recordings", _SUP),
    Request("hold.release", holds.release,
            _args("hold_id*:int", "supervisor*", "pin*", "reason*"),
            "a supervisor ends a hold", _SUP),
    Request("purge.run", purge.purge,
            _args("apply:flag", "supervisor", "supervisor_pin", "second_supervisor",
                  "second_pin", "appraisal:int"),
            "purge footage past retention (dry run unless applied by two supervisors, "
            "citing an approved appraisal)", _SUP),
    Request("appraisal.propose", appraisals.propose,
            _args("proposer*", "pin*", "reason*", "recordings:texts", "candidates:flag"),
            "propose recordings for destruction (an appraisal), with a reason",
            (SUPERVISOR, KEEPER)),
    Request("appraisal.approve", appraisals.approve,
            _args("appraisal_id*:int", "supervisor*", "pin*"),
            "a supervisor other than the proposer approves an appraisal", _SUP),
    Request("appraisal.reject", appraisals.reject,
            _args("appraisal_id*:int", "supervisor*", "pin*", "reason*"),
            "a supervisor other than the proposer rejects an appraisal", _SUP),
    Request("access.request", access.request,
            _args("purpose*", "kind*", "recordings*:texts", "extractor"),
            "ask to view, copy or export recordings (a supervisory body: direct access)",
            _READERS),
    Request("access.approve", access.approve,
            _args("request_id*:int", "supervisor*", "pin*", "days:number"),
            "a supervisor approves an access request", _SUP),
    Request("access.refuse", access.refuse,
            _args("request_id*:int", "supervisor*", "pin*", "reason*"),
            "a supervisor refuses an access request", _SUP),
    Request("access.export", access.export,
            _args("request_id*:int", "to*:path", "extractor", "place", "iso:path",
                  "confirm_confidential:flag"),
            "export an approved request as a disc-ready package (the person it names)",
            (SUPERVISOR, KEEPER, OVERSIGHT)),
    Request("access.view", access.view,
            _args("request_id*:int", "to*:path", "recordings:texts", "place"),
            "a working copy to view, registered before it is made (the person it names)",
            _READERS),
    Request("access.copy", access.copy,
            _args("request_id*:int", "to*:path", "recordings:texts", "place",
                  "confirm_confidential:flag"),
            "a copy, registered before it is made (the person the request names)", _READERS),
    Request("access.mark", access.mark,
            _args("by*", "pin*", "category*", "reason*", "recordings:texts", "case"),
            "mark recordings or a case confidential (a supervisor or the keeper)",
            (SUPERVISOR, KEEPER)),
    Request("access.unmark", access.unmark,
            _args("mark_id*:int", "supervisor*", "pin*", "reason*"),
            "a supervisor releases a confidentiality mark", _SUP),
    Request("gaps.account", gaps.account,
            _args("item_id*:int", "officer*", "pin*", "text*"),
            "the officer's own account of a gap", (OFFICER, SUPERVISOR)),
    Request("gaps.explain", gaps.explain,
            _args("supervisor*", "pin*", "text*", "ids:ints", "all_open_for"),
            "a supervisor reviews gap items and accepts their accounts (written)", _SUP),
    Request("gaps.return", gaps.return_account,
            _args("supervisor*", "pin*", "text*", "ids*:ints"),
            "a supervisor returns gap accounts to their officers with a reason", _SUP),
    Request("gaps.file", gaps.file, _args("keeper*", "pin*", "ids*:ints", "note"),
            "the records keeper files reviewed gap items", (KEEPER,)),
    Request("web_token.add", web_tokens.add, _args("name*", "role*"),
            "an API token for a machine (shown once)", (ADMIN,)),
    Request("web_token.revoke", web_tokens.revoke, _args("name*"),
            "revoke a machine's API token", (ADMIN,)),
)  # fmt: skip


def call(
    dock: DockContext,
    name: str,
    arguments: Mapping[str, Any],
    *,
    actor: str,
    roles: tuple[str, ...] | None = None,
    exports: str | None = None,
) -> Any:
    """Run request ``name`` on ``dock`` as ``actor`` (who asked: a login, ``hq:NAME``).
    ``roles``: those of a logged-in person (the daemon's web sessions), refused with
    :class:`RequestNotAllowed` when none may make it; None for the dock's own user.
    A logged-in person's paths must lie in ``exports`` (see :func:`confined_path`): the
    daemon writes as the dock, and a path from a browser could name its databases."""
    request = TABLE.get(name)
    if request is None:
        raise RequestError(f"no request {name!r}")
    if not isinstance(actor, str) or not actor:
        raise RequestError(f"{name}: who asks (the actor) must be named")
    if roles is not None and not request.allowed(roles):
        raise RequestNotAllowed(f"{name}: only a {' or '.join(request.roles)} may ask for this")
    checked = request.check(arguments)
    if roles is not None:
        for arg in request.args:
            if arg.names_a_path and checked.get(arg.name) is not None:
                checked[arg.name] = confined_path(name, checked[arg.name], exports)
    return request.run(dock, actor, **checked)


def confined_path(request: str, path: str, exports: str | None) -> str:
    """``path`` if it names something new (or a folder) strictly inside ``exports``, with
    no link on the way; RequestError otherwise. An existing file is never replaced."""
    if exports is None:
        raise RequestError(f"{request}: no exports folder to write into")
    root = os.path.realpath(exports)
    if not os.path.isabs(path) or os.path.normpath(path) != path.rstrip(os.sep):
        raise RequestError(f"{request}: {path!r} is not a plain path in the exports folder")
    inside = os.path.realpath(path)
    if os.path.commonpath([root, inside]) != root or inside == root or inside != path:
        raise RequestError(f"{request}: {path!r} is not inside the exports folder")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise RequestError(f"{request}: {path!r} exists already: an export never replaces")
    return path


class RequestNotAllowed(RequestError):
    """The person's roles may not make this request; nothing was run."""
