"""What the dock and headquarters both need and neither owns: the one UTC time format
(:mod:`common.utc`), the log lines (:mod:`common.logsetup`, :mod:`common.jsonlog`), text
safe to print (:mod:`common.printable`) and the one configuration file checker
(:mod:`common.checker`).

Neutral ground: it imports nothing of the project (an import-linter contract), so
sharing it couples neither side to the other.
"""
