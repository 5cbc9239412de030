"""The dock <-> recorder wire protocol: pure (no I/O, no threads, no clock reads).

Layers: ``framing`` (bytes <-> checked frames), ``session`` (reliable ordered
delivery), ``codec`` + ``messages`` (typed message bodies), ``auth``
(challenge-response). The specification is PROTOCOL.md beside this file.
"""

from .messages import PROTOCOL_VERSION, SUPPORTED_VERSIONS

__all__ = ["PROTOCOL_VERSION", "SUPPORTED_VERSIONS"]
