"""Usage reports as asynchronous jobs: the pure rules (job lifecycle, report content, CSV)."""
