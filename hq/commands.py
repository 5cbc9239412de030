"""Signed commands from headquarters to one dock, and waiting for the dock's reply.

A dock obeys a command only when its Ed25519 signature verifies against a public key
in the dock's configuration (MQTT.md, "command"), so the private key is headquarters'
authority over the fleet: it is created 0600 and never overwritten.
"""

from __future__ import annotations

import base64
import os
import stat
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from hq.config import BrokerSettings, mqtt_client
from mqtt_contract import contract

#: The dock refuses commands older than this anyway; the broker may drop them after it.
EXPIRY_S = int(contract.COMMAND_MAX_AGE_S)


class SigningKeyError(Exception):
    """The signing key file is missing, unsafe or not an Ed25519 private key."""


def generate_key(path: str) -> str:
    """Write a new private key to ``path`` (0600, refusing to overwrite); return the public
    key as base64 of its raw 32 bytes, the form a dock's ``hq_public_keys`` takes."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path} exists; refusing to replace a signing key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return public_key_b64(key)


def load_key(path: str) -> Ed25519PrivateKey:
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            data = f.read(64 * 1024)
    except OSError as exc:
        raise SigningKeyError(f"signing key {path}: {exc.strerror}") from None
    if st.st_mode & 0o077:
        raise SigningKeyError(
            f"signing key {path} is readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); fix: chmod 600 {path}"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError:
        raise SigningKeyError(f"signing key {path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {path}: not an Ed25519 key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign_command(
    key: Ed25519PrivateKey,
    command: contract.Command | str,
    args: dict[str, Any],
    by: str,
    *,
    site: str,
    dock: str,
    now: float,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A complete command payload (``schema`` included) with its ``sig``; the signature
    covers the dock it is for, so it cannot be replayed to another dock."""
    body: dict[str, Any] = {
        "schema": contract.SCHEMA,
        "id": command_id or str(uuid.uuid4()),
        "site": site,
        "dock": dock,
        "command": contract.Command(command).value,
        "issued": contract.utc(now),
        "by": by,
        "args": args,
    }
    body["sig"] = base64.b64encode(key.sign(contract.signing_bytes(body))).decode()
    contract.decode(contract.Kind.CMD, contract.encode(contract.Kind.CMD, body))  # validate
    return body


def publish_command(
    client: mqtt.Client, site: str, dock: str, command: dict[str, Any]
) -> mqtt.MQTTMessageInfo:
    """QoS 1, not retained, MQTT 5 message expiry of 300 s (a stale command is refused)."""
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = EXPIRY_S
    body = {k: v for k, v in command.items() if k != "schema"}
    topic = contract.dock_topic(site, dock, contract.Kind.CMD, command["command"])
    return client.publish(
        topic, contract.encode(contract.Kind.CMD, body), qos=1, retain=False, properties=props
    )


class CommandError(Exception):
    """The broker could not be reached or refused us."""


def send_and_wait(
    broker: BrokerSettings,
    name: str,
    site: str,
    dock: str,
    command: dict[str, Any],
    *,
    timeout_s: float = 30.0,
) -> dict[str, Any] | None:
    """Publish ``command`` and return the dock's reply with its id, or None on timeout.

    Its own short-lived client (``hq-NAME-cmd-…``, clean session): reusing the monitor's
    client id would take the monitor's session away from it.
    """
    client = mqtt_client(broker, f"hq-{name}-cmd-{uuid.uuid4().hex[:8]}")
    reply_topic = contract.dock_topic(site, dock, contract.Kind.REPLY)
    subscribed, answered = threading.Event(), threading.Event()
    failure: list[str] = []
    reply: dict[str, Any] = {}

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            failure.append(f"broker refused the connection: {reason}")
            subscribed.set()
            return
        c.subscribe(reply_topic, options=SubscribeOptions(qos=1))

    def on_subscribe(_c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            failure.append(f"cannot subscribe to {reply_topic}: {reasons[0]}")
        subscribed.set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = contract.decode(contract.Kind.REPLY, msg.payload)
        except contract.ContractError:
            return
        if payload["id"] == command["id"]:
            reply.update(payload)
            answered.set()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    deadline = time.monotonic() + timeout_s
    try:
        client.connect(broker.host, broker.effective_port, keepalive=broker.keepalive_s)
    except OSError as exc:
        raise CommandError(f"cannot reach {broker.host}:{broker.effective_port}: {exc}") from None
    client.loop_start()
    try:
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            raise CommandError(f"no answer from the broker at {broker.host}")
        if failure:
            raise CommandError(failure[0])
        info = publish_command(client, site, dock, command)
        info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not answered.wait(max(0.0, deadline - time.monotonic())):
            return None
        return dict(reply)
    finally:
        client.disconnect()
        client.loop_stop()
