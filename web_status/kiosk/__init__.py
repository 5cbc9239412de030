"""The kiosk (``/kiosk``): the dock's own touchscreen. No login; only from the addresses
``[web] kiosk_allowed_from`` names. An officer checks out (or cancels their grant) with
number and PIN on an on-screen keypad; the slot grid is live."""

from flask import Blueprint

# Its script and stylesheet are web_status/static/kiosk.{js,css} (the site's static files).
bp = Blueprint("kiosk", __name__, url_prefix="/kiosk", template_folder="templates")

from web_status.kiosk import views  # noqa: E402, F401 - routes register on import
