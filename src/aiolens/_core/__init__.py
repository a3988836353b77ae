"""Pure logic: parsers, correlation, backoff, redaction.

No I/O and no event loop (no asyncio, aiohttp, websockets): everything here is
driven by the layers above and tested without sockets. ``tests/architecture``
reads the imports to keep it so. The redaction registry is the one piece of
process-wide state: secrets registered by any client are masked in every log
record, wherever it comes from.
"""
