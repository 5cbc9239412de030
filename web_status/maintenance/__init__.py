"""Maintenance (role maintenance or admin): devices and their history as plots, the
recorders' event log reads, faults and refusals, firmware inventory, flag and repair,
"self-test now", the LED, buzzer and screen test, and per-slot error counters."""

from flask import Blueprint

bp = Blueprint(
    "maintenance",
    __name__,
    url_prefix="/maintenance",
    template_folder="templates",
)

from web_status.home.views import AREAS  # noqa: E402
from web_status.maintenance import api, views  # noqa: E402, F401 - routes register on import

#: The start page links here for maintenance staff and admins (home.views.AREAS).
AREAS.append(("maintenance.index", "maintenance.title", ("maintenance", "admin")))
