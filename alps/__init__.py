"""alps."""
