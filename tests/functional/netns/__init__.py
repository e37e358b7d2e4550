"""The ``namespace`` placement against the real kernel (root only)."""
