"""An offload's bytes between the recorder's reader and the writer: delivered in order,
bit for bit, with what waits between them bounded in bytes (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dock.evidence import bulk_copy
from dock.evidence.bulk_copy import PullChunks


class _Client:
    """A recorder client whose read gives the chunks it is told to, then maybe fails."""

    def __init__(self, chunks: list[bytes], fail: bool = False) -> None:
        self.chunks, self.fail = chunks, fail

    def read_recording(self, rec: Any, sink: Any) -> int:
        offset = 0
        for chunk in self.chunks:
            sink(offset, memoryview(chunk))  # a view, as the stream reader gives
            offset += len(chunk)
        if self.fail:
            raise ConnectionError("cable pulled")
        return offset


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 600_000), max_size=40),
    bound=st.sampled_from([1, 100_000, 1 << 20]),
    fail=st.booleans(),
)
def test_chunks_arrive_in_order_and_what_waits_stays_within_the_bound(
    sizes: list[int], bound: int, fail: bool
) -> None:
    chunks = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bulk_copy, "IN_FLIGHT_BYTES", bound)
        pull = PullChunks(_Client(chunks, fail), rec=None)  # type: ignore[arg-type]
        got: list[bytes] = []
        try:
            if fail:
                with pytest.raises(ConnectionError):
                    for chunk in pull:
                        assert pull._held <= max(bound, max(sizes, default=0))
                        got.append(chunk)
            else:
                for chunk in pull:
                    assert pull._held <= max(bound, max(sizes, default=0))
                    got.append(chunk)
        finally:
            pull.close()
    assert got == chunks  # every byte, in order, nothing lost at the failure either
    assert not pull._thread.is_alive()


def test_a_writer_that_gives_up_ends_the_reader() -> None:
    """The writer stops early (its own error): the reader, held at the bound, ends too."""
    chunks = [b"x" * 300_000] * 50
    pull = PullChunks(_Client(chunks), rec=None)  # type: ignore[arg-type]
    first = next(iter(pull))
    pull.close()
    assert first == chunks[0] and not pull._thread.is_alive()
