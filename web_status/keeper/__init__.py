"""The records keeper's pages (002 art.22, 25; 001 art.15, 19; 003 art.12): the
explanation items a supervisor reviewed, to file (001 art.19(2): the officer writes the
account, the unit head reviews it, the unit's recorder keeper keeps it on file), and the
last ones filed."""

from flask import Blueprint

from dock.domain.roles import KEEPER
from web_status.home.views import AREAS

bp = Blueprint("keeper", __name__, url_prefix="/keeper", template_folder="templates")

from web_status.keeper import api, views  # noqa: E402, F401 - routes register on import

#: The start page links here for those who hold the role (home.views.AREAS).
if not any(a[0] == "keeper.index" for a in AREAS):
    AREAS.append(("keeper.index", "keeper.link", (KEEPER,)))
