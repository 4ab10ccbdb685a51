"""Living with MWAA after day one: upgrades, cutover, metadata backup and restore, adoption.

Each workflow reads like promotion: a side-effect-free plan of typed steps, an explainer that
prints it, and one executor that applies it.
"""
