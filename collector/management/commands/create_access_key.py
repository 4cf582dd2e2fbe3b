"""Print a new API access id and key for a user, for automation: `ACCESS_ID ACCESS_KEY`."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from collector.auth import create_access_key


class Command(BaseCommand):
    help = "Create an API access key for USERNAME and print 'ACCESS_ID ACCESS_KEY' on one line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--label", default="created by manage.py create_access_key")

    def handle(self, *args, username, label, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        row, key = create_access_key(user=user, label=label)
        self.stdout.write(f"{row.access_id} {key}")
