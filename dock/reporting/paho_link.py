"""The broker link over paho-mqtt 2.x (MQTT 5, TLS, reconnect with back-off and jitter).

The only module that imports paho. It runs paho's network loop in its own thread and
does its own reconnecting, so the delay can carry jitter: a thousand docks that lost
the same broker must not all come back in the same second. Callbacks only put tuples
in ``inbox``; they never take a lock of ours (paho may hold its own while calling).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from dock.config import MqttConfig, read_password

log = logging.getLogger("dock.mqtt")

#: Reconnect delay: doubles from MIN to MAX, each wait drawn from [half, all] of it.
RECONNECT_MIN_S = 1.0
RECONNECT_MAX_S = 60.0
#: QoS 1 messages paho may have unacknowledged at once.
INFLIGHT = 100
#: Seconds without the broker before "unreachable" is a warning (a person should look):
#: a short outage is the outbox's job, said at INFO.
DOWN_WARN_S = 300.0


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): capped, with jitter."""
    ceiling = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(attempt, 16))
    return rng.uniform(ceiling / 2, ceiling)


class PahoLink:
    def __init__(self, cfg: MqttConfig, client_id: str, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._will: tuple[str, Callable[[], bytes]] | None = None
        #: (connection number, its client), swapped as one value: publish reads it once.
        self._current: tuple[int, mqtt.Client] = (0, self._new_client(0))

    def _new_client(self, number: int) -> mqtt.Client:
        """A fresh paho client for each connection: paho would otherwise re-send the last
        connection's unacknowledged messages under their old ids, while the outbox already
        sends them again; and the will gets this connection's time. Each client carries
        its connection number (paho's userdata): message ids restart with every client,
        so an ack is (connection, mid), and callbacks of a past client are ignored."""
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,  # ours, with jitter
            userdata=number,
        )
        cfg = self.cfg
        if cfg.tls:
            c.tls_set(
                ca_certs=cfg.ca_file,
                certfile=cfg.cert_file or None,
                keyfile=cfg.key_file or None,
            )
        if cfg.username:
            c.username_pw_set(cfg.username, read_password(cfg))
        c.max_inflight_messages_set(INFLIGHT)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        if self._will is not None:
            topic, payload = self._will
            c.will_set(topic, payload(), qos=1, retain=True)
        return c

    # --- paho callbacks (network thread) ----------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if userdata != self._current[0]:
            return
        if rc.is_failure:
            log.error("broker refused the connection: %s", rc)
            self.inbox.put(("disconnected", f"refused: {rc}"))
            return
        self._connected = True
        self.inbox.put(("connected",))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if userdata != self._current[0]:
            return  # a past connection's late word (paho may call it from a publish)
        was, self._connected = self._connected, False
        if was:
            self.inbox.put(("disconnected", str(rc)))

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        # MQTT 5 brokers answer a refused publish (ACL) with a PUBACK carrying a failure
        # code: paho still calls it "published", so look at the code.
        self.inbox.put(("ack", (userdata, mid), not rc.is_failure, str(rc)))

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if userdata != self._current[0]:
            return
        self.inbox.put(("message", message.topic, bytes(message.payload)))

    # --- BrokerLink -------------------------------------------------------------

    def start(self, will_topic: str, will_payload: Callable[[], bytes]) -> None:
        self._will = (will_topic, will_payload)
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        attempt = 0
        down_since = time.monotonic()  # since start or the last connection
        while not self._stop.is_set():
            try:
                number = self._current[0] + 1
                self._current = (number, self._new_client(number))
                self._current[1].connect(
                    self.cfg.host, self.cfg.broker_port, self.cfg.keepalive_s, clean_start=True
                )
            except (OSError, ValueError) as exc:
                down = time.monotonic() - down_since
                log.log(
                    logging.WARNING if down >= DOWN_WARN_S else logging.INFO,
                    "broker %s:%s unreachable: %s (reporting down for %.0f s; events wait in "
                    "the outbox)",
                    self.cfg.host,
                    self.cfg.broker_port,
                    exc,
                    down,
                )
                self._stop.wait(backoff(attempt, self._rng))
                attempt += 1
                continue
            after_stop = 0
            while after_stop < 10:  # after stop(): a few more turns to flush DISCONNECT
                rc = self._current[1].loop(timeout=0.2)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                if self._connected:
                    attempt = 0
                    down_since = time.monotonic()
                if self._stop.is_set():
                    after_stop += 1
            if self._connected:
                self._connected = False
                self.inbox.put(("disconnected", "connection lost"))
            if not self._stop.is_set():
                self._stop.wait(backoff(attempt, self._rng))
                attempt += 1

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> Hashable | None:
        number, client = self._current  # one read: the client and its number agree
        if not self._connected:
            return None
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return None  # not sent (e.g. paho's queue is full): the outbox keeps it
        return (number, int(info.mid))

    def subscribe(self, topic: str) -> None:
        self._current[1].subscribe(topic, qos=1)

    def stop(self) -> None:
        """Disconnect cleanly: a normal DISCONNECT, so the broker does not send the will."""
        self._stop.set()
        if self._connected:
            self._current[1].disconnect()  # thread-safe: queued for the network thread
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._connected = False
