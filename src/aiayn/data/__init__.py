"""aiayn.data."""
