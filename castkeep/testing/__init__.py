"""Helpers for tests and benchmarks (never used to make real images)."""
