"""Operating the server: metrics, structured logs, health checks, the admin view, a watchdog.

- :mod:`.hooks` — one :class:`~.hooks.Operations` per server: the connection registry, the
  connect/reject/disconnect log events, the traffic log and the lag histogram, fed through
  :class:`~transports.stats.TransportStats` and :meth:`ServerContext.admit`/``reject``;
- :mod:`.metrics` — ``/metrics`` in the Prometheus text format (``prometheus-client``);
- :mod:`.logformat` — ``--log-format json|text`` with secrets redacted;
- :mod:`.health` — ``/healthz`` and ``/readyz``;
- :mod:`.admin` — ``/admin`` and ``/api/admin/*``;
- :mod:`.watch` — ``transport-lab watch``; :mod:`.logsummary` — ``transport-lab logs``.

See ``docs/operations.md``.
"""
