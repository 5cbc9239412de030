"""The audit checkpoints docks reported, as rows of headquarters' database.

Mixed into :class:`hq.store.Store` (which owns the connection and its transactions), so
:func:`hq.checkpoints.judge` gets what it needs in a few indexed look-ups while the
store's other tables stay in their own module.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hq.checkpoints import Claim, Known

_CLAIM = "seq, head, time, t, prev_seq, prev_head, public_key, signature"


class CheckpointRows:
    """Reads and inserts on the ``checkpoints`` table; ``db`` is the store's connection."""

    db: sqlite3.Connection

    def _claim(self, where: str, args: tuple[Any, ...]) -> Claim | None:
        row = self.db.execute(
            f"SELECT {_CLAIM} FROM checkpoints WHERE site=? AND dock=? AND status=1 AND {where}",
            args,
        ).fetchone()
        return None if row is None else Claim(*row)

    def checkpoints_known(self, site: str, dock: str, claim: Claim) -> Known:
        """What :func:`hq.checkpoints.judge` needs to know around ``claim``: a few
        indexed look-ups, however long the dock's history."""
        sd = (site, dock)
        ps = claim.prev_seq
        key = self.db.execute(
            "SELECT public_key FROM checkpoints WHERE site=? AND dock=? AND status=1 "
            "AND public_key IS NOT NULL ORDER BY seq LIMIT 1",
            sd,
        ).fetchone()
        follows_rejected = ps is not None and (
            self.db.execute(
                "SELECT 1 FROM checkpoints WHERE site=? AND dock=? AND status=0 AND seq=? "
                "AND head=? LIMIT 1",
                (*sd, ps, claim.prev_head),
            ).fetchone()
            is not None
        )
        return Known(
            same=self._claim("seq=?", (*sd, claim.seq)),
            prev=None if ps is None else self._claim("seq=?", (*sd, ps)),
            inside=None
            if ps is None
            else self._claim("seq>? AND seq<? ORDER BY seq LIMIT 1", (*sd, ps, claim.seq)),
            above=self._claim("seq>? ORDER BY seq LIMIT 1", (*sd, claim.seq)),
            key=None if key is None else key[0],
            follows_rejected=follows_rejected,
        )

    def add_checkpoint(
        self,
        site: str,
        dock: str,
        claim: Claim,
        accepted: bool,
        now: float,
        boot: str | None = None,
        event_seq: int | None = None,
    ) -> None:
        c = claim
        self.db.execute(
            "INSERT INTO checkpoints (site, dock, seq, head, time, t, prev_seq, prev_head, "
            "public_key, signature, status, received_at, boot, event_seq) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (site, dock, c.seq, c.head, c.time, c.t, c.prev_seq, c.prev_head, c.public_key,
             c.signature, 1 if accepted else 0, now, boot, event_seq),
        )  # fmt: skip

    def last_checkpoint(self, site: str, dock: str) -> dict[str, Any] | None:
        """The newest accepted signed checkpoint of a dock (``dock-hq checkpoint``)."""
        row = self.db.execute(
            "SELECT seq, head, time, public_key, signature, received_at FROM checkpoints "
            "WHERE site=? AND dock=? AND status=1 AND signature IS NOT NULL "
            "ORDER BY seq DESC LIMIT 1",
            (site, dock),
        ).fetchone()
        return None if row is None else dict(row)
