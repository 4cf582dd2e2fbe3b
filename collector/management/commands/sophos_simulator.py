"""``python manage.py sophos_simulator``: ``python -m sophos_simulator`` from the product.

A thin wrapper: the options, the printed report and the serving loop are
:mod:`sophos_simulator.cli`'s, so both commands take the same options and print the same lines.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sophos_simulator import cli


class Command(BaseCommand):
    help = cli.DESCRIPTION

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        try:
            cli.run(options, write)
        except cli.UsageError as exc:
            raise CommandError(str(exc)) from exc
