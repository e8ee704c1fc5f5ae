"""HTTP long polling: a held GET that returns a batch as soon as there is something to send."""
