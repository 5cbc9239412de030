"""The audit viewer (role supervisor or admin): entries filtered by kind, actor, device
and time, paged by seq; the chain's verification (in the daemon); the signed export,
downloaded by its id."""

from flask import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/audit", template_folder="templates")

from web_status.audit import api, views  # noqa: E402, F401 - routes register on import
from web_status.home.views import AREAS  # noqa: E402

#: The start page links here for supervisors and admins (home.views.AREAS).
AREAS.append(("audit.index", "audit.title", ("supervisor", "admin")))
