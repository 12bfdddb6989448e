"""The file channel's transaction: puts claim capacity at once and reach the log at commit; takes hold their
sequence numbers until commit (a TAKE record) or rollback (back to the head of the queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agent.core import ChannelException, Event, Transaction

if TYPE_CHECKING:
    from channels.file.channel import FileChannel

__all__ = ["FileTransaction"]


class FileTransaction(Transaction):
    """One transaction on a :class:`FileChannel`, through the channel's ``_claim`` … ``_return_takes`` hooks."""

    __slots__ = ("_puts", "_claimed", "_id", "_took")

    def __init__(self, channel: FileChannel):
        super().__init__(channel)
        self._puts: list[Event] = []
        self._claimed = 0
        self._id = channel.new_tx_id()
        self._took = False

    def _put(self, events: Sequence[Event]) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        ch._claim(len(events))
        self._claimed += len(events)
        self._puts.extend(events)

    def _take(self, max_events: int) -> list[Event]:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        ranges = ch._take_ranges(self._id, max_events)
        if not ranges:
            return []
        self._took = True
        try:
            return ch._events_for(ranges)
        except BaseException:
            ch.counter.add(take_error=1)
            raise

    def _commit(self) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        try:
            if self._puts:
                ch._commit_puts(self._puts)
                self._claimed = 0
            if self._took:
                ch._commit_takes(self._id)
        except OSError as exc:
            ch.counter.set(unhealthy=True)
            if self._puts:
                ch.counter.add(put_error=1)
            raise ChannelException(f"channel {ch.name}: commit failed writing the log: {exc}") from exc
        finally:
            self._puts = []

    def _rollback(self) -> None:
        ch: FileChannel = self.channel  # type: ignore[assignment]
        if self._claimed:
            ch._unclaim(self._claimed)
            self._claimed = 0
        self._puts = []
        if self._took:
            ch._return_takes(self._id)
