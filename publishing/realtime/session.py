"""One client's event stream, whatever the transport: hello, the missed events (or a resync), then live ones."""

from __future__ import annotations

from typing import Any

from publishing.realtime.clients import Client, QueueClient
from publishing.realtime.hub import hub


def parse_last_seq(value: str | None) -> int | None:
    """A client's last sequence; None when absent. Raises ValueError when it is not a whole number."""
    if value is None or value == "":
        return None
    seq = int(value)
    if seq < 0:
        raise ValueError("last_seq must not be negative")
    return seq


class EventSession:
    def __init__(self, client: QueueClient | Client) -> None:
        self.client = hub.register(client)

    @property
    def dropped(self) -> bool:
        return self.client.dropped

    async def opening(self, last_seq: int | None) -> list[dict[str, Any]]:
        """What to send first. Registered before reading the backlog, so nothing falls between the two.

        The hello's `seq` is where the client stands once it has it: its own `last_seq` when the
        missed events follow, otherwise the latest sequence. A client can always keep the highest
        `seq` it has seen and resume from it.
        """
        hello = hub.hello()
        self.client.sent_seq = hello["seq"]
        if last_seq is None:
            return [hello]
        backlog = await hub.backlog(last_seq)
        if backlog is None:
            return [hello, {"type": "resync", "seq": hello["seq"]}]
        self.client.sent_seq = max([hello["seq"], *(e["seq"] for e in backlog)])
        return [{**hello, "seq": last_seq}, *backlog]

    async def resume(self, last_seq: int) -> list[dict[str, Any]]:
        """A client asking mid-stream for what it missed after `last_seq`."""
        backlog = await hub.backlog(last_seq)
        if backlog is None:
            return [{"type": "resync", "seq": hub.last_seq}]
        self.client.sent_seq = max([self.client.sent_seq, *(e["seq"] for e in backlog)])
        return backlog

    async def next_events(self) -> list[dict[str, Any]]:
        """A pull transport's next live events: at least one, and all of those queued by now."""
        return await self.client.next()

    def close(self) -> None:
        hub.unregister(self.client)
