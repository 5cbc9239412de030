"""The release of bwc-dock: the one place it is written.

pyproject.toml reads it (``[tool.setuptools.dynamic]``), so the wheel, the Debian
package (``scripts/build-deb``) and ``dock --version`` always agree, also when the code
runs from a folder on ``sys.path`` (the package's ``/opt/bwc-dock/lib``) rather than
from an installed distribution.
"""

__version__ = "0.1.0"
