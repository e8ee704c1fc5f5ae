"""``transport-lab load``: an open-loop load generator against any Transport Lab URL.

- :mod:`.plan` — what to run: clients per transport (a mix), URLs, connect rate, publish
  rate, duration, shards;
- :mod:`.shard` — one client process: its share of the clients, each a real Transport Lab
  client (``transports.clients``) under ``follow()``, reporting every second;
- :mod:`.run` — the parent: starts the shards, publishes on an open-loop schedule, merges
  the per-second reports into the live display and the result files;
- :mod:`.cli` — the command.

See ``docs/scale.md`` for the method and what the figures mean.
"""
