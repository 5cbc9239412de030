"""How a recorder fails, as exceptions a caller can act on: the link (LinkError and
its kinds), a refusal (RecorderRefused), authentication (AuthenticationFailed)."""

from __future__ import annotations

from dock.devices.recorder_client.bounds import MAX_ID_BYTES
from firmware_protocol.messages import ErrorCode


class LinkError(ConnectionError):
    """The recorder stopped answering, the link dropped, or it is not a recorder."""


class ProtocolViolation(LinkError):
    """The recorder answered, but with what the protocol forbids or no honest recorder
    says: a reply of another type, pages that do not add up, a value that cannot be
    true, more than the dock's bounds allow. Not retried on the same link."""


class Stalled(LinkError):
    """The recorder answers, but too slowly: an exchange outlived its bound (a
    self-test, a listing, a read below the goodput floor). Not retried."""


class NoReply(LinkError):
    """No reply within the wait's timeout."""


class InvalidRecording(ProtocolViolation):
    """One recording's description cannot be true. The dock skips it (it stays on the
    device, never erased) and reports it; the other recordings are not affected."""

    def __init__(self, recording_id: str, reason: str) -> None:
        self.recording_id = recording_id[:MAX_ID_BYTES]
        self.reason = reason
        super().__init__(f"recording {self.recording_id!r} refused: {reason}")


class NoAnswer(LinkError):
    """Nothing answered on the link at all: most likely no recorder is docked there."""


class LinkGone(LinkError):
    """The transport itself is gone (unplugged, closed): nothing to re-open."""


class RecorderRefused(Exception):
    """The recorder answered with an ERROR."""

    def __init__(self, code: int, message: str, request_type: int | None = None) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"ERROR_{code}"
        super().__init__(f"{name}: {message}" if message else name)
        self.code = code
        self.name = name
        self.message = message
        self.request_type = request_type


class AuthenticationFailed(Exception):
    """The recorder did not accept our proof, or could not prove itself to us."""


class NotPermitted(RecorderRefused):
    """The dock will not send this request: the session cannot protect it (a recorder
    speaking protocol version 1, or no authentication yet) or the recorder lacks the
    capability. Nothing was sent; the recorder is unchanged."""

    def __init__(self, message: str) -> None:
        super().__init__(int(ErrorCode.UNSUPPORTED), message)


class FrameTooLong(LinkError):
    """A reply keeps arriving damaged: the line cannot carry a frame that long."""
