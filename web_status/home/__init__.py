"""The start page by role, login and logout, the language switch, and the first two API
routes (``/api/v1/session``, ``/api/v1/slots``) the other areas copy."""

from flask import Blueprint

bp = Blueprint("home", __name__, template_folder="templates")

from web_status.home import api, views  # noqa: E402, F401 - routes register on import
