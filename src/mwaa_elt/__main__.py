"""`mwaa-elt` and `python -m mwaa_elt`: start what the command will wait for, then run it.

Importing the command line takes about 0.4 s (Typer, rich, the stage model). A promotion's gates
wait for Airflow, whose import takes longer still, so before anything else is imported the
Airflow the last promotion into that stage used is started (`promote.airflow_ahead`); then the
promotion opens (`promote.opening.open_ahead`): its first reads are answered while the command
line is imported.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Console entry point (`mwaa_elt.cli.main` runs the command)."""
    if sys.argv[1:2] == ["promote"]:  # other commands start nothing ahead: not imported
        from mwaa_elt.promote.airflow_ahead import start_for_arguments

        start_for_arguments(sys.argv[1:])
        from mwaa_elt.promote.opening import open_ahead

        open_ahead(sys.argv[1:])
    from mwaa_elt.cli import main as run_command

    run_command()


if __name__ == "__main__":
    main()
