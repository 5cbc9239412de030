"""Statistics (REQUIREMENTS §9, §2) for supervisors and admins: per officer or unit over
a period, charts, a CSV of each table, and ``/api/v1/stats/<table>``."""

from flask import Blueprint

from dock.domain.roles import ADMIN, SUPERVISOR
from web_status.home.views import AREAS

#: Who may see the statistics: people who supervise, and the dock's administrators.
ROLES: tuple[str, ...] = (SUPERVISOR, ADMIN)

bp = Blueprint("stats", __name__, template_folder="templates")

from web_status.stats import api, views  # noqa: E402, F401 - routes register on import

#: The start page links here for supervisors and admins (home.views.AREAS).
if not any(a[0] == "stats.index" for a in AREAS):
    AREAS.append(("stats.index", "stats.title", ROLES))
