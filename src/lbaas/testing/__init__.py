"""Helpers shared by the test suites, the benchmarks and the examples.

Nothing here is used by the service itself. :mod:`lbaas.testing.backend` is a
real threaded HTTP/TLS/TCP backend that answers ``Welcome to <name>``: the
members behind HAProxy in data-plane tests, benchmarks and the walkthrough
(``examples/walkthrough.py``). It lives in the package so that it runs as
``python -m lbaas.testing.backend`` from anywhere, including inside a
network namespace, without the repository on ``sys.path``.
"""
