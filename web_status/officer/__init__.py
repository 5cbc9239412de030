"""The officer's own pages: their recorder now, their returns and the offload of their
footage against its deadline, and their open explanation items with a field for their
account. Every person who carries a recorder has the officer role."""

from flask import Blueprint

from dock.domain.roles import OFFICER
from web_status.home.views import AREAS

bp = Blueprint("officer", __name__, url_prefix="/officer", template_folder="templates")

from web_status.officer import api, footage, views  # noqa: E402, F401 - routes register on import

#: The start page links here for those who hold the role (home.views.AREAS).
if not any(a[0] == "officer.index" for a in AREAS):
    AREAS.append(("officer.index", "officer.link", (OFFICER,)))
