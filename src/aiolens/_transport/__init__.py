"""The only place that touches sockets: REST over aiohttp, WebSockets, SSE."""
