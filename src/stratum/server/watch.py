"""Watch streams: newline-delimited JSON events read from the store's change feed.

Writes made by this process wake watchers at once; a short poll catches writes made by
other server replicas on the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from anyio import to_thread

from stratum.api.v1alpha1 import BY_KIND
from stratum.core import access
from stratum.core.errors import ApiError
from stratum.server.feed import ChangeFeed, event_line, wanted
from stratum.server.security import RequestContext
from stratum.server.services.objects import ObjectService
from stratum.server.status import status_body
from stratum.store.objects import Change, ObjectStore

POLL_SECONDS = 1.0
BOOKMARK_SECONDS = 15.0


class ChangeNotifier:
    """Wakes every waiting watcher; callable from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()
        self.closing = asyncio.Event()
        self.wakes = 0  # how many times watchers were woken: lets a late waiter see it missed one
        self._feed: ChangeFeed | None = None

    def feed(self, store: ObjectStore) -> ChangeFeed:
        """The change feed every watch stream of this process shares."""
        if self._feed is None or self._feed.store is not store:
            self._feed = ChangeFeed(store, lambda: self.wakes)
        return self._feed

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        """Ask every watch stream to end (server shutdown); callable from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.closing.set)

    def notify(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.wakes += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float, *, seen: int | None = None) -> None:
        """Until the next wake-up (or `timeout`); at once if there was one since `seen`."""
        if seen is not None and seen < self.wakes:
            return
        event = self._event
        waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.closing.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()


_line = event_line


async def watch_stream(
    service: ObjectService,
    notifier: ChangeNotifier,
    *,
    kind: str,
    namespace: str | None,
    since: int | None,
    label_selector: str | None,
    ctx: RequestContext,
) -> AsyncIterator[bytes]:
    """ADDED for what exists (when no resourceVersion is given), then every change after.

    Only what the caller may read is sent; the rest of the feed is skipped unseen. The
    stream ends, with an ERROR event, once the caller's token is revoked or expires."""
    from stratum.core.selectors import parse_selector

    principal = ctx.principal
    # Narrow the feed to the caller's namespaces in the query, for namespaced kinds only:
    # cluster-scoped objects (Sites, Tenants, Clusters) have no namespace and would never
    # match; `can_see` decides for each of them.
    model = BY_KIND.get(kind)
    namespaced = model is None or model.NAMESPACED
    namespaces = (
        access.visible_namespaces(principal, kind) if namespace is None and namespaced else None
    )
    selector = parse_selector(label_selector)
    if since is None:
        page = await to_thread.run_sync(
            lambda: service.list(kind, namespace=namespace, label_selector=label_selector, ctx=ctx)
        )
        for item in page.items:
            yield _line("ADDED", item)
        since = page.resource_version
    last_bookmark = asyncio.get_running_loop().time()
    feed = notifier.feed(service.store)
    while not notifier.closing.is_set():
        ended = await to_thread.run_sync(ctx.token_ended)
        if ended is not None:
            yield _line("ERROR", status_body(401, "Unauthorized", f"{ended}: the watch ends"))
            return
        seen = notifier.wakes
        try:
            changes, read_to = await _next_changes(feed, seen, since, kind, namespace, namespaces)
        except ApiError as err:
            yield _line("ERROR", status_body(err.code, err.reason, err.message))
            return
        for change in changes:
            since = change.resource_version
            labels = change.object.get("metadata", {}).get("labels") or {}
            if selector.matches(labels) and access.can_see(principal, change.object):
                yield feed.line(change)
        since = max(since, read_to)  # other kinds' changes up to there were skipped
        if changes:
            continue
        now = asyncio.get_running_loop().time()
        if now - last_bookmark >= BOOKMARK_SECONDS:
            last_bookmark = now
            yield _line(
                "BOOKMARK",
                {
                    "kind": kind,
                    "apiVersion": "stratum.dev/v1alpha1",
                    "metadata": {"resourceVersion": str(since)},
                },
            )
        await notifier.wait(POLL_SECONDS, seen=seen)


async def _next_changes(
    feed: ChangeFeed,
    seen: int,
    since: int,
    kind: str,
    namespace: str | None,
    namespaces: frozenset[str] | None,
) -> tuple[list[Change], int]:
    """The watcher's next changes, and the resourceVersion up to which it has seen all:
    from the shared feed when that covers `since`, else from the store (catching up)."""
    shared = await feed.after(since, wakes=seen)
    if shared is None:
        own = await to_thread.run_sync(_changes, feed.store, since, kind, namespace, namespaces)
        return own, since
    changes, read_to = shared
    return [c for c in changes if wanted(c, kind, namespace, namespaces)], read_to


def _changes(
    store: ObjectStore,
    since: int,
    kind: str,
    namespace: str | None,
    namespaces: frozenset[str] | None = None,
) -> list[Any]:
    with store.read() as tx:
        return tx.changes_since(since, kind=kind, namespace=namespace, namespaces=namespaces)
