"""What a service says when it does nothing: the caller (CLI, MQTT, web) words it."""

from __future__ import annotations


class RequestError(ValueError):
    """The request is malformed or names something that is not there; nothing changed."""


class Refused(Exception):
    """Credentials or an approval were refused (the refusal is audited); nothing changed."""

    def __init__(self, message: str, *, locked: bool = False) -> None:
        super().__init__(message)
        #: The PIN that was tried is locked: another supervisor must unlock it.
        self.locked = locked
