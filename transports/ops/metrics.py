"""``/metrics``: the server's counters in the Prometheus text format, via ``prometheus-client``.

Most figures already exist as plain integers (:class:`~transports.stats.TransportStats`, the
feed's and the MQTT bridge's counters); a custom collector reads them at scrape time, so
counting a delivery costs nothing beyond what ``/api/stats`` already paid. Only what has no
counter of its own is a live ``prometheus_client`` metric (resumes, client publishes), except
the publish→write lag histogram: it is observed for every delivered message, and
``prometheus_client.Histogram.observe`` (a lock and a value object per bucket) cost about
1-3 µs there, as much as the socket write. :class:`LagHistogram` keeps plain bucket counts
(one ``bisect`` and two additions, on the event loop) that the collector exposes as a
``HistogramMetricFamily``.

Names follow the Prometheus conventions (``transportlab_`` prefix, ``_total`` counters, base
units ``_seconds``/``_bytes``). Label values come from fixed sets only — transport names and
documented reasons — so cardinality is bounded; client addresses never become labels.

Per-channel figures are labelled by *namespace* (``chat:lobby`` → ``chat``, the single
stream → ``default``) through :func:`namespace_label`, which caps the number of distinct values
(``MAX_NAMESPACES``; the rest fold into ``other``): a channel name never becomes a label.

Each server has its own :class:`~prometheus_client.CollectorRegistry` (several servers may
share a process in tests and notebooks).
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from transports.feed import Feed
    from transports.stats import TransportStats

PREFIX = "transportlab"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
MAX_NAMESPACES = 50
_namespaces: set[str] = set()


def namespace_label(channel: str) -> str:
    """The bounded label value for a channel: its namespace (``ns:name`` → ``ns``)."""
    ns = channel.split(":", 1)[0] if ":" in channel else "default"
    if ns in _namespaces:
        return ns
    if len(_namespaces) < MAX_NAMESPACES:
        _namespaces.add(ns)
        return ns
    return "other"


class LagHistogram:
    """Bucket counts of one transport's lag; ``counts[i]`` holds values in
    (``LAG_BUCKETS[i-1]``, ``LAG_BUCKETS[i]``], the last one those above every bound.

    It counts *deliveries* (one observation per frame written to one client). The fan-out
    loop writes one message to every caught-up client in a row, so :meth:`delivered` reads
    the clock and finds the bucket once per run of ``RUN`` consecutive deliveries of the same
    message and counts the run's others with that value: a later delivery in a run is at most
    ``RUN`` socket writes (~1-2 ms at 1000 clients on this machine) later than the value it
    is counted with, below the buckets' resolution where lag matters (10 ms and up). The run
    in progress is added by :meth:`flush` (the next message's first delivery, or a scrape).
    """

    RUN = 32

    __slots__ = ("_bucket", "_last", "_run", "_value", "counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS) + 1)
        self.sum = 0.0
        self._last: object = None  # the message of the run in progress
        self._run = 0
        self._bucket = 0
        self._value = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LAG_BUCKETS, value)] += 1
        self.sum += value

    def delivered(self, message: object, sent_at: float) -> None:
        """One delivery of ``message`` (stamped ``sent_at``), written now."""
        if message is self._last and self._run < self.RUN:
            self._run += 1
            return
        if self._run:
            self.flush()
        value = time.time() - sent_at
        self._last, self._run, self._value = message, 1, value
        self._bucket = bisect_left(LAG_BUCKETS, value)

    def flush(self) -> None:
        if self._run:
            self.counts[self._bucket] += self._run
            self.sum += self._value * self._run
            self._run = 0
        self._last = None

    def cumulative(self) -> list[tuple[str, float]]:
        self.flush()
        out, total = [], 0
        for bound, n in zip((*LAG_BUCKETS, math.inf), list(self.counts), strict=True):
            total += n
            out.append(("+Inf" if math.isinf(bound) else repr(float(bound)), float(total)))
        return out


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag: dict[str, LagHistogram] = {}
        self.resumes = Counter(
            f"{PREFIX}_resumes",
            "Subscriptions opened at a cursor that needed a history replay",
            ["transport"],
            registry=self.registry,
        )
        self.replayed = Counter(
            f"{PREFIX}_replayed_messages",
            "Messages replayed from history to resuming subscriptions",
            ["transport"],
            registry=self.registry,
        )
        self.admin_refusals = Counter(
            f"{PREFIX}_admin_refusals",
            "Requests to admin endpoints refused (no or wrong token, bad body)",
            ["reason"],
            registry=self.registry,
        )
        self.client_publishes = Counter(
            f"{PREFIX}_client_publishes",
            "Messages published into the feed by clients, by entry point",
            ["source"],
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)

    def lag_for(self, transport: str) -> LagHistogram:
        return self.lag.setdefault(transport, LagHistogram())

    def bind(self, ctx: ScrapeSource) -> None:
        self.registry.register(ServerCollector(ctx, self.lag))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int | None) -> Any:
        """``--metrics-port``: serve this registry on its own port (no auth: bind it to
        loopback or a network only the scraper reaches). Returns the server, or None."""
        if port is None:
            return None
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


class ScrapeSource(Protocol):
    """What a scrape reads of the server context (``ServerContext`` satisfies it)."""

    @property
    def feed(self) -> Feed: ...
    @property
    def stats(self) -> Mapping[str, TransportStats]: ...
    @property
    def transports(self) -> Mapping[str, object]: ...


def _family(kind: str, name: str, doc: str, labels: list[str]) -> Any:
    cls = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
    return cls(f"{PREFIX}_{name}", doc, labels=labels)


class ServerCollector(Collector):
    """Reads the server's own counters at scrape time."""

    def __init__(self, ctx: ScrapeSource, lag: Mapping[str, LagHistogram]) -> None:
        self.ctx = ctx
        self.lag = lag  # the owning Metrics' histograms, filled as frames are sent

    def describe(self) -> list[Metric]:
        return []  # names depend on what is enabled; let the registry not pre-check them

    def collect(self) -> Iterator[Metric]:
        ctx = self.ctx
        opened = _family("gauge", "connections_open", "Connections open now", ["transport"])
        accepted = _family("counter", "connections_accepted", "Connections accepted", ["transport"])
        rejected = _family(
            "counter",
            "connections_rejected",
            "Connections refused, by documented reason (auth, origin, limits, bad input)",
            ["transport", "reason"],
        )
        closed = _family(
            "counter",
            "connections_closed",
            "Connections ended, by reason (slow_consumer, send_timeout, client_gone, ...)",
            ["transport", "reason"],
        )
        frames = _family(
            "counter",
            "delivered_frames",
            "Frames (messages and controls) handed to the transport",
            ["transport"],
        )
        sent = _family(
            "counter",
            "delivered_bytes",
            "Encoded frame bytes handed to the transport (excl. protocol framing)",
            ["transport"],
        )
        for name, s in ctx.stats.items():
            opened.add_metric([name], s.active)
            accepted.add_metric([name], s.accepted)
            frames.add_metric([name], s.frames_out)
            sent.add_metric([name], s.bytes_out)
            for reason, n in s.refused.items():
                rejected.add_metric([name, reason], n)
            for reason, n in s.closed.items():
                closed.add_metric([name, reason], n)
        yield from (opened, accepted, rejected, closed, frames, sent)
        lag = HistogramMetricFamily(
            f"{PREFIX}_delivery_lag_seconds",
            "Time from publish (sent_at) to handing the frame to the transport",
            labels=["transport"],
        )
        for name, hist in list(self.lag.items()):
            lag.add_metric([name], hist.cumulative(), hist.sum)
        yield lag
        yield from self._feed()
        yield from self._channels()
        yield from self._transports()

    def _channels(self) -> Iterator[Metric]:
        """Named channels by namespace, read from the hub at scrape time (nothing per
        message): namespaces are declared in the config, and :func:`namespace_label` caps
        them anyway, so the label set stays bounded however many channels clients open."""
        hub = getattr(self.ctx, "hub", None)
        if hub is None:
            return
        labels = ["namespace"]
        count = _family("gauge", "channels", "Channels held by the hub", labels)
        published = _family(
            "counter", "channel_published_messages", "Messages published, by namespace", labels
        )
        subscribers = _family(
            "gauge", "channel_subscribers", "Open channel subscriptions, by namespace", labels
        )
        members = _family(
            "gauge", "channel_presence_members", "Presence members, by namespace", labels
        )
        totals: dict[str, list[int]] = {}
        for channel in hub.all():
            ns = namespace_label(channel.name)
            row = totals.setdefault(ns, [0, 0, 0, 0])
            row[0] += 1
            row[1] += channel.feed.stats.published
            row[2] += channel.feed.subscribers
            row[3] += len(channel.members)
        for ns, (n, pub, subs, mem) in sorted(totals.items()):
            count.add_metric([ns], n)
            published.add_metric([ns], pub)
            subscribers.add_metric([ns], subs)
            members.add_metric([ns], mem)
        yield from (count, published, subscribers, members)

    def _feed(self) -> Iterator[Metric]:
        feed = self.ctx.feed
        fs = feed.stats
        yield CounterMetricFamily(
            f"{PREFIX}_published_messages", "Messages published into the feed", fs.published
        )
        yield CounterMetricFamily(
            f"{PREFIX}_subscriptions", "Feed subscriptions opened", fs.subscribed
        )
        yield CounterMetricFamily(
            f"{PREFIX}_slow_consumer_drops",
            "Subscriptions dropped because their bounded queue overflowed",
            fs.slow_consumer_disconnects,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_subscribers", "Open feed subscriptions", feed.subscribers
        )
        # The feed keeps its subscriptions private; reading their queue lengths here is
        # read-only and happens at scrape time only.
        queued = [s.queued for s in list(getattr(feed, "_subs", ()))]
        yield GaugeMetricFamily(
            f"{PREFIX}_queued_messages", "Live messages queued for subscribers", sum(queued)
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_queued_messages_max",
            "Longest subscriber queue (a slow consumer approaching the bound)",
            max(queued, default=0),
        )
        yield GaugeMetricFamily(f"{PREFIX}_last_seq", "Last seq of the feed epoch", feed.last_seq)

    def _transports(self) -> Iterator[Metric]:
        transports = self.ctx.transports
        if "webrtc" in transports:
            peers = getattr(transports["webrtc"], "peers", ())
            yield GaugeMetricFamily(f"{PREFIX}_webrtc_peers", "WebRTC peer connections", len(peers))
        if "mqtt" in transports:
            bridge = getattr(transports["mqtt"], "bridge", None)
            yield GaugeMetricFamily(
                f"{PREFIX}_mqtt_broker_up",
                "1 when the feed bridge is connected to the MQTT broker",
                1 if bridge is not None and bridge.connected else 0,
            )
            if bridge is not None:
                yield GaugeMetricFamily(
                    f"{PREFIX}_mqtt_inflight_messages",
                    "QoS 1 publishes awaiting PUBACK (bounded by the bridge window)",
                    bridge.inflight,
                )
                sys_ = bridge.broker_sys
                clients = sys_.get("$SYS/broker/clients/connected")
                if clients is not None:
                    yield GaugeMetricFamily(
                        f"{PREFIX}_mqtt_broker_clients",
                        "Clients connected to the broker, the bridge included ($SYS)",
                        clients,
                    )
                sent = sys_.get("$SYS/broker/publish/messages/sent")
                if sent is not None:
                    yield CounterMetricFamily(
                        f"{PREFIX}_mqtt_broker_publish_sent",
                        "PUBLISH packets the broker sent to its clients ($SYS)",
                        sent,
                    )
                counters = bridge.counters
                for key, doc in (
                    ("published", "Messages the bridge published to the broker"),
                    ("dropped", "QoS 0 publishes dropped while disconnected"),
                    ("resubscribed", "Times the bridge resubscribed after overflowing"),
                    ("gaps", "History gaps the bridge could not bridge"),
                    ("broker_connects", "Bridge connections to the broker"),
                ):
                    yield CounterMetricFamily(
                        f"{PREFIX}_mqtt_bridge_{key}", doc, counters.get(key, 0)
                    )
