"""Infrastructure every layer uses: the clock, message catalogue, sanitising, group commit (batching),
acknowledge-first, locks, leases, metrics, logging."""
