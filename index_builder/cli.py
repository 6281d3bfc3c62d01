"""`unihpr-build`: the offline builder's command line. Registers the command groups and reports every
BuildError as one line with exit code 1 (``--debug`` shows the traceback)."""

from __future__ import annotations

import sys

import click
import typer

from index_builder.commands import data
from index_builder.errors import BuildError

app = typer.Typer(no_args_is_help=True, help="Build UniHPR pose caches, models and bundles.")
app.registered_commands.extend(data.app.registered_commands)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        result = app(args=argv, prog_name="unihpr-build", standalone_mode=False)
    except BuildError as err:
        if debug:
            raise
        click.echo(f"error: {err}", err=True)
        return 1
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.Abort:
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
