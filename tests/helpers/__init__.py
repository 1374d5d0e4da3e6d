"""Helpers the tests share (no test imports another test module's private names)."""
