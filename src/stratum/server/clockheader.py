"""Every answer says the time on the server's one clock (`Stratum-Clock: ISO; rate=R`).

Under `stratum up` the clock runs `--speed` times faster than the wall clock (simulated
time), so timestamps in objects are ahead of any client's clock: a client that measured
ages against its own would print 0s for everything. With this header a client measures
against the server's time, and with `rate` it can carry that time forward between answers
(a watch stream)."""

from __future__ import annotations

from typing import Any

from stratum.core.clock import Clock, clock_rate

HEADER = b"stratum-clock"


def clock_header_value(clock: Clock) -> str:
    return f"{clock.now().isoformat()}; rate={clock_rate(clock):g}"


class ClockHeader:
    """Pure ASGI middleware: adds the header to every HTTP answer, streams included."""

    def __init__(self, app: Any, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    *message.get("headers", []),
                    (HEADER, clock_header_value(self.clock).encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)
