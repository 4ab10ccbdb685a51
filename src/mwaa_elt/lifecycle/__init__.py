"""Living with MWAA after day one: upgrades, cutover, metadata backup and restore, adoption.

Each module is one workflow of issue #12; they share nothing but the stage model.
"""
