"""asyncio I/O: REST over aiohttp, WebSockets, SSE, and the asyncio helpers they share
(deadlines, shielded cleanup, the event-loop check). Knows no vendor: the vendor
packages speak their protocols in terms of it."""
