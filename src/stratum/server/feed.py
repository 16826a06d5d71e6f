"""One reader of the store's change feed per server process, shared by every watch stream.

Without it each watcher read the feed itself after every write: 100 watchers meant 200
store reads per write (one that finds the change, one that finds nothing more), and each
serialized the event again. The feed keeps the newest changes in memory; a write wakes the
watchers, the first to ask reads the store once, and the rest are answered from memory.
A watcher whose position is older than what the feed holds reads the store itself, as
before (so a compacted history is still reported as Gone).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import Callable, Collection
from typing import Any

from anyio import to_thread

from stratum.core.errors import Gone
from stratum.core.secrets import redact
from stratum.store.objects import Change, ObjectStore

KEEP = 4096  # changes held in memory; a watcher further behind reads the store itself
MAX_AGE_SECONDS = 0.5  # how stale an answer may be without a wake-up (other replicas' writes)


class ChangeFeed:
    """The newest changes of every kind, read once for all watchers of this process.

    Change numbers (resourceVersions) are handed out under the writers' lock on the counter
    row and commit in that order, so reading "every change after the newest one held" never
    skips a change that commits later."""

    def __init__(
        self, store: ObjectStore, wakes: Callable[[], int], *, keep: int | None = None
    ) -> None:
        keep = keep or KEEP
        self.store = store
        self._wakes = wakes  # how many times the notifier has woken watchers so far
        self._changes: deque[Change] = deque(maxlen=keep)
        self._head: int | None = None  # every change up to here has been read
        self._fresh_wakes = -1  # the notifier's wake count when the newest read began
        self._fresh_at = float("-inf")  # the loop's clock when the newest read began
        self._lock = asyncio.Lock()
        self._lines: OrderedDict[int, bytes] = OrderedDict()
        self._keep = keep

    async def after(self, since: int, *, wakes: int) -> tuple[list[Change], int] | None:
        """Every change after `since`, as fresh as the notifier's wake number `wakes`, and
        the resourceVersion they run to (a watcher has seen everything up to it); None when
        `since` is not covered (too old, or ahead of what was read): read the store."""
        await self._refresh(wakes)
        head = self._head
        if head is None or since > head:
            return None
        first = self._changes[0].resource_version if self._changes else head + 1
        if since < first - 1:
            return None
        return [c for c in self._changes if c.resource_version > since], head

    def line(self, change: Change) -> bytes:
        """The event as a watch sends it (secrets redacted), serialized once for everyone."""
        found = self._lines.get(change.resource_version)
        if found is None:
            found = event_line(change.type, redact(change.object))
            self._lines[change.resource_version] = found
            while len(self._lines) > self._keep:
                self._lines.popitem(last=False)
        return found

    async def _refresh(self, wakes: int) -> None:
        loop = asyncio.get_running_loop()
        if self._is_fresh(wakes, loop.time()):
            return
        async with self._lock:
            now = loop.time()
            if self._is_fresh(wakes, now):  # another watcher read while this one waited
                return
            # Every write counted by the notifier so far committed before this read starts.
            self._fresh_wakes, self._fresh_at = self._wakes(), now
            head = self._head
            try:
                if head is None:
                    self._head = await to_thread.run_sync(self._current)
                    return
                news = await to_thread.run_sync(self._read, head)
            except Gone:  # fell behind a compaction: start again from the present
                self._changes.clear()
                self._head = await to_thread.run_sync(self._current)
                return
            except Exception:
                self._fresh_wakes, self._fresh_at = -1, float("-inf")  # not fresh after all
                raise
            self._changes.extend(news)
            if news:
                self._head = news[-1].resource_version
                if len(news) == _PAGE:  # more than a page arrived: not all of it is held yet
                    self._fresh_wakes, self._fresh_at = -1, float("-inf")

    def _is_fresh(self, wakes: int, now: float) -> bool:
        return self._fresh_wakes >= wakes and now - self._fresh_at <= MAX_AGE_SECONDS

    def _current(self) -> int:
        with self.store.read() as tx:
            return tx.current_resource_version()

    def _read(self, head: int) -> list[Change]:
        with self.store.read() as tx:
            return tx.changes_since(head, limit=_PAGE)


_PAGE = 500


def wanted(
    change: Change, kind: str, namespace: str | None, namespaces: Collection[str] | None
) -> bool:
    """The filter the store applies to a watcher's own read, applied to the shared feed."""
    obj: dict[str, Any] = change.object
    if obj.get("kind") != kind:
        return False
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    if namespace is not None and ns != namespace:
        return False
    return namespaces is None or ns in namespaces


def event_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return (json.dumps({"type": event_type, "object": obj}, separators=(",", ":")) + "\n").encode()
