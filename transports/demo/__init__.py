"""The demo servers for the five use cases (``docs/demos.md``)."""
