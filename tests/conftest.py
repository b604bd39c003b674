"""Shared pytest configuration; small seeded inputs are built by fixtures in the test modules."""
