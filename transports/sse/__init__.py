"""Server-Sent Events (WHATWG HTML §9.2): ``id:`` = seq, ``data:`` = message JSON."""
