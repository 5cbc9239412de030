"""The site stays small: it holds no key and signs nothing, so loading every page's code
must not load cryptography (6 MiB) nor sqlite-utils before a statistics page asks."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import web_status
from web_status import BLUEPRINTS
import importlib
for name in BLUEPRINTS:
    importlib.import_module(name)
import web_status.server
print(sorted(m for m in ("cryptography", "sqlite_utils", "paho", "serial", "usb", "gpiozero")
             if m in sys.modules))
"""


def test_the_site_loads_no_signing_nor_device_libraries() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
