"""First-run and start-up chores: schedules upserted by name, and the first admin user."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_q.models import Schedule

from sumosources.env import env_str

SCHEDULES = (
    # name, function, schedule type, minutes
    ("collector-dispatch", "collector.tasks.dispatch", Schedule.MINUTES, 1),
    ("collector-purge", "collector.tasks.purge", Schedule.HOURLY, None),
)


class Command(BaseCommand):
    help = "Upsert the django-q2 schedules and create the first admin user if there is none."

    def handle(self, *args, **options):
        for name, func, kind, minutes in SCHEDULES:
            defaults = {"func": func, "schedule_type": kind, "repeats": -1}
            if minutes:
                defaults["minutes"] = minutes
            _, created = Schedule.objects.update_or_create(name=name, defaults=defaults)
            self.stdout.write(f"schedule {name}: {'created' if created else 'up to date'}")
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = env_str("SUMOSOURCES_ADMIN_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        else:
            # The same rules as a password set in the admin (AUTH_PASSWORD_VALIDATORS): the first
            # admin can do everything, so "1" must not be enough.
            try:
                validate_password(password, user=User(username="admin"))
            except ValidationError as error:
                raise CommandError(
                    "SUMOSOURCES_ADMIN_PASSWORD is refused: "
                    + " ".join(error.messages)
                    + " Choose a longer, less guessable one, or unset it to have one generated."
                )
        User.objects.create_superuser("admin", email="", password=password)
        if generated:
            # Printed once, on the console of the person starting the product, never logged.
            self.stdout.write(
                self.style.WARNING(f"Created user 'admin' with password: {password}  (shown once)")
            )
        else:
            self.stdout.write(
                "Created user 'admin' with the password from SUMOSOURCES_ADMIN_PASSWORD"
            )
