"""Text understanding: what a rep typed (a visit line, a request line, a time expression, a hospital name)
turned into values; no database, no I/O."""
