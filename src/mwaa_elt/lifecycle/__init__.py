"""Living with MWAA after day one: metadata backup and restore, upgrades and cutovers.

Each workflow reads like promotion: a side-effect-free plan of typed steps, an explainer that
prints it, and one executor that applies it.
"""
