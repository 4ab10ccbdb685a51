"""The MWAA lifecycle after day one: rehearsed upgrades, cutover, metadata, adoption."""
