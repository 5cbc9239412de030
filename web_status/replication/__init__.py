"""Replication to the unit's central storage (issue 16), for supervisors, maintenance,
records keepers and admins: per target the backlog, the oldest waiting package, failures
with their reasons and the last verified copy; per package its state (filter: failed).
Read from the queue through ``dock.services.replication_status`` and ``dock.storage``;
the engine itself runs in the daemon."""

from flask import Blueprint

from dock.domain.roles import ADMIN, KEEPER, MAINTENANCE, SUPERVISOR
from web_status.home.views import AREAS

ROLES = (SUPERVISOR, MAINTENANCE, KEEPER, ADMIN)
bp = Blueprint("replication", __name__, url_prefix="/replication", template_folder="templates")

from web_status.replication import api, views  # noqa: E402, F401 - routes register on import

#: The start page links here for those roles (home.views.AREAS).
if not any(a[0] == "replication.index" for a in AREAS):
    AREAS.append(("replication.index", "replication.title", ROLES))
