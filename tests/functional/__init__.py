"""Functional tests: real kernels, real processes (HAProxy, namespaces)."""
