"""Transport Lab: one live feed over five real-time transports, measured side by side.

The core contract every module imports lives here: :class:`Message`, :class:`Cursor`,
the :class:`Feed` and the wire codec. Protocol sub-packages (``websocket``, ``sse``,
``longpoll``, ``webrtc``, ``mqtt``) each hold a ``server.py`` and a ``client.py`` with the
same shape.
"""

from transports.feed import Feed, Subscription, SubscriptionClosed
from transports.message import Control, Cursor, Frame, Message

__all__ = [
    "Control",
    "Cursor",
    "Feed",
    "Frame",
    "Message",
    "Subscription",
    "SubscriptionClosed",
]
__version__ = "0.1.0"
