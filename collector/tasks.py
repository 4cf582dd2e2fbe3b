"""django-q2 task entry points: thin, ids only, all logic in collector.engine.

Payloads are pickled and signed into the broker, not encrypted: never pass a model instance or a
secret here. Every task is idempotent because the queue delivers at least once.
"""

from collector import engine


def run_source(source_id: int) -> str:
    return engine.run_source(source_id)


def run_tenant(tenant_pk: int) -> str:
    return engine.run_tenant(tenant_pk)


def finish_stop(source_id: int) -> bool:
    return engine.finish_stop(source_id)


def dispatch() -> dict:
    return engine.dispatch()


def purge() -> dict:
    return engine.purge()


def deliver(destination_id: int) -> str:
    from collector.delivery.runs import deliver as run

    return run(destination_id)


def ping() -> str:
    """A no-op the tests and the health page use to see that a cluster answers."""
    return "pong"
