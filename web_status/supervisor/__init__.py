"""The supervisor's pages: override a refused check-out, the explanation queue with bulk
close, holds, purge preview and four-eyes apply, access requests and approvals, exports
with progress and download, and the custody chain of any recorder or recording."""

from flask import Blueprint

from dock.domain.roles import SUPERVISOR
from web_status.home.views import AREAS

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor", template_folder="templates")

from web_status.supervisor import api, appraisals, cases, marks, views  # noqa: E402, F401 - routes register on import

#: The start page links here for those who hold the role (home.views.AREAS).
if not any(a[0] == "supervisor.index" for a in AREAS):
    AREAS.append(("supervisor.index", "supervisor.link", (SUPERVISOR,)))
