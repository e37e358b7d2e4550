"""Unit tests of lbaas.dataplane."""
