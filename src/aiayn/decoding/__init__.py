"""aiayn.decoding."""
