"""A headquarters stand-in for tests: a paho subscriber with a persistent session that
records everything it receives, with bounded waits."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Listener:
    def __init__(
        self,
        host: str,
        port: int,
        topic: str = "bwc/v1/docks/#",
        client_id: str = "hq-test",
        credentials: tuple[str, str] | None = None,
        tls: tuple[str, str, str] | None = None,
    ) -> None:
        self.received: list[tuple[str, dict[str, Any], bool]] = []
        self._cond = threading.Condition()
        self.topic = topic
        self.connected = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = lambda *a: self.connected.clear()
        c.reconnect_delay_set(0.1, 0.5)
        if credentials:
            c.username_pw_set(*credentials)
        if tls:
            c.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600  # queued for us while we or the broker are away
        c.connect(host, port, keepalive=5, clean_start=False, properties=props)
        c.loop_start()
        self.client = c
        assert self.connected.wait(10), "listener could not connect"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.topic, qos=1)
            self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            payload = json.loads(message.payload) if message.payload else {}
        except ValueError:
            payload = {"raw": bytes(message.payload)}
        with self._cond:
            self.received.append((message.topic, payload, bool(message.retain)))
            self._cond.notify_all()

    def on(self, suffix: str) -> list[dict[str, Any]]:
        with self._cond:
            return [p for t, p, _ in self.received if t.endswith(suffix)]

    def wait_for(self, check: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait (bounded) until ``check()`` returns something truthy; return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = check()
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; received topics: {self.topics()}")
                self._cond.wait(min(left, 0.2))

    def topics(self) -> list[str]:
        return sorted({t for t, _, _ in self.received})

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
