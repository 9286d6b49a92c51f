"""Test support code: fixtures that copy published data layouts (no downloads)."""
