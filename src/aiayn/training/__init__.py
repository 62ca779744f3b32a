"""aiayn.training."""
