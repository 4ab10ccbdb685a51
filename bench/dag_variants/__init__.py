"""The three forms of the parse-cost benchmark's DAGs, and the probe that times their parsing."""
