"""aiayn.evaluation."""
