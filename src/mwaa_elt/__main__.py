"""`mwaa-elt` and `python -m mwaa_elt`: start what the command will wait for, then run it.

Importing the command line takes about 0.4 s (Typer, rich, the stage model). A promotion's gates
wait for Airflow, whose import takes longer still, so before anything else is imported the
Airflow the last promotion into that stage used is started (`promote.airflow_ahead`); then the
promotion opens (`promote.opening.open_ahead`): its first reads are answered while the command
line is imported.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    """Console entry point (`mwaa_elt.cli.main` runs the command)."""
    # Some 600 modules load before a command runs. The collector's passes over them while they
    # load free nothing (they live as long as the process) and took 0.1 s of a no-change
    # promotion's 1.2 s: it is off until the command line is imported, and what was loaded is
    # then frozen out of later passes (`gc.freeze`), which walk only what the command makes.
    gc.disable()
    try:
        if sys.argv[1:2] == ["promote"]:  # other commands start nothing ahead: not imported
            from mwaa_elt.promote.airflow_ahead import start_for_arguments

            start_for_arguments(sys.argv[1:])
            from mwaa_elt.promote.opening import open_ahead

            open_ahead(sys.argv[1:])
        from mwaa_elt.cli import main as run_command
    finally:
        gc.freeze()
        gc.enable()
    run_command()


if __name__ == "__main__":
    main()
