"""kinfit."""
