"""`unihpr-build`: the offline builder's command line. Registers the command groups, shows the builder's stage
lines (``logging``, INFO) on stderr and reports every BuildError as one line with exit code 1 (``--debug`` shows
the traceback)."""

from __future__ import annotations

import sys

import typer

from index_builder.bundle import commands as bundle_commands
from index_builder.bundle import library_commands
from index_builder.datasets import commands as dataset_commands
from index_builder.errors import BuildError
from index_builder.evaluation import commands as evaluation_commands
from index_builder.ingest import commands as ingest_commands
from index_builder.progress import stage_lines
from index_builder.training import commands as training_commands

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Build UniHPR pose caches, models and bundles.")
for group in (dataset_commands, ingest_commands, training_commands, evaluation_commands, bundle_commands,
              library_commands):
    app.registered_commands.extend(group.app.registered_commands)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        with stage_lines():
            app(args=argv, prog_name="unihpr-build", standalone_mode=True)
    except SystemExit as done:  # typer reports usage errors itself and exits 2
        return done.code if isinstance(done.code, int) else 0
    except BuildError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
