"""The one factory of replication targets: a ``[[replication.target]]`` to its transport.

SMB and S3 are imported only when a target of that kind is configured, so a dock without
their libraries runs (and says in one line what is missing when one is configured).
"""

from __future__ import annotations

import importlib

from dock.config.replication import TargetConfig
from dock.domain.replica import ReplicaError, ReplicaTarget

#: kind -> (module, class): each transport's module in this package.
TRANSPORTS = {
    "sftp": ("dock.replicas.sftp", "SftpTarget"),
    "smb": ("dock.replicas.smb", "SmbTarget"),
    "s3": ("dock.replicas.s3", "S3Target"),
}


def target_from_config(cfg: TargetConfig) -> ReplicaTarget:
    """The transport for ``cfg``; ReplicaError (one line) when it cannot be loaded."""
    try:
        module_name, class_name = TRANSPORTS[cfg.kind]
    except KeyError:
        raise ReplicaError(f"{cfg.name}: unknown kind {cfg.kind!r}") from None
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ReplicaError(
            f"{cfg.name}: the {cfg.kind} transport cannot be loaded ({exc})"
        ) from None
    target: ReplicaTarget = cls(cfg)
    return target
