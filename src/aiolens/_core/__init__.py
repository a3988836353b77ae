"""Pure logic with no I/O: parsers, correlation, backoff, redaction."""
