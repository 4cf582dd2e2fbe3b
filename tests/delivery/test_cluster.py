"""Delivery in a real django-q2 cluster: within seconds of a page being stored, and through
twenty SIGKILLs of the worker and a receiver outage, with nothing lost."""

import collections
import random

import pytest

from collector import services
from collector.delivery import runs
from collector.forms import destination_form_class
from collector.models import Destination, Message
from tests.conftest import wait_for
from tests.support.file_destination import NAME, PATH, delivered
from tests.support.messages import make_messages

ENV = {"SUMOSOURCES_DESTINATION_KINDS": PATH, "SUMOSOURCES_CLAIM_TTL": "3",
       "SUMOSOURCES_QUEUE_TTL": "3"}  # fmt: skip
BATCH = 50  # FileKind.max_batch_messages


@pytest.fixture(autouse=True)
def file_kind(settings):
    settings.DESTINATION_KINDS = [PATH]
    settings.CLAIM_TTL = settings.QUEUE_TTL = 3


def _destination(path, **extra):
    form = destination_form_class(NAME)(data={"name": "SOC", "route": "", "start_from": "all",
                                              "path": str(path), **extra})  # fmt: skip
    assert form.is_valid(), form.errors
    return services.create_destination(form=form)


@pytest.mark.cluster
def test_a_stored_page_is_delivered_within_seconds(cluster_factory, tmp_path):
    cluster_factory(extra_env=ENV)
    soc = _destination(tmp_path / "out.ndjson")
    wait_for(lambda: Destination.objects.get(pk=soc.pk).state != "Pending", timeout=20,
             message="the first (empty) delivery")  # fmt: skip
    make_messages(120)
    runs.kick_deliveries()  # what a source run does after its page commits
    wait_for(lambda: len(delivered(soc.config["path"])) == 120, timeout=10,
             message="delivery within seconds")  # fmt: skip


@pytest.mark.cluster
@pytest.mark.slow
def test_twenty_kills_and_a_receiver_outage_lose_nothing(cluster_factory, tmp_path):
    rng = random.Random(20261201)
    total = 3000
    make_messages(total)
    out = tmp_path / "out.ndjson"
    (tmp_path / "out.slow").write_text("0.05")  # a slow receiver: kills land mid-delivery
    soc = _destination(out)
    seen = 0
    for kill in range(20):
        cluster = cluster_factory(extra_env=ENV, wait=False)
        if kill in (6, 13):  # the receiver goes down, then comes back
            (tmp_path / "out.fail").write_text("503")

            def noticed():
                runs.kick_delivery(soc.pk)
                return Destination.objects.get(pk=soc.pk).failure_count > 0

            wait_for(noticed, timeout=30, interval=0.1, message="the outage to be noticed")
            (tmp_path / "out.fail").unlink()
        target = min(total, seen + BATCH * rng.randint(1, 3))

        def progressed(target=target):
            # Kick as the dispatcher would: the killed worker's claim expires after CLAIM_TTL.
            runs.kick_delivery(soc.pk)
            return len(delivered(out)) >= target

        wait_for(progressed, timeout=60, interval=0.05, message=f"progress before kill {kill + 1}")
        cluster.kill()
        seen = len(delivered(out))
    (tmp_path / "out.slow").unlink()
    cluster_factory(extra_env=ENV, wait=False)

    def drained():
        runs.kick_delivery(soc.pk)  # the dispatcher's tick, at test speed
        return len({line["id"] for line in delivered(out)}) == total

    wait_for(drained, timeout=120, interval=0.5, message="every message delivered")
    ids = [line["id"] for line in delivered(out)]
    stored = set(Message.objects.filter(index="").values_list("id", flat=True))
    assert set(ids) >= stored  # at least once
    duplicates = sum(n - 1 for n in collections.Counter(ids).values())
    assert duplicates <= 20 * BATCH  # at most the batch in flight per kill


BULK_PATH = "tests.support.small_batches.ElasticBulk50"


@pytest.mark.cluster
@pytest.mark.slow
def test_bulk_gets_every_message_exactly_once_through_kills_and_a_restart(
    cluster_factory, settings
):
    from tests.support.receivers import BULK, Receiver, Slow, destination

    settings.DESTINATION_KINDS = [BULK_PATH]
    env = {**ENV, "SUMOSOURCES_DESTINATION_KINDS": BULK_PATH}
    rng = random.Random(11)
    total = 2000
    make_messages(total)
    receiver = Receiver().start()
    try:
        receiver.script(BULK, *[Slow(0.05) for _ in range(2000)])  # kills land mid-delivery
        config, secret = destination(receiver, "ElasticBulk")
        soc = Destination(name="Elastic", kind="ElasticBulk", config=config, cursor=0)
        soc.set_secret(secret)
        soc.save()
        for kill in range(20):
            cluster = cluster_factory(extra_env=env, wait=False)
            if kill in (6, 13):  # the receiver restarts on the same port, keeping its store
                receiver.stop()
                receiver.start()
            target = min(total, len(receiver.docs()) + BATCH * rng.randint(1, 2))

            def progressed(target=target):
                runs.kick_delivery(soc.pk)
                return len(receiver.docs()) >= target

            wait_for(
                progressed, timeout=60, interval=0.05, message=f"progress before kill {kill + 1}"
            )
            cluster.kill()
        receiver._actions.clear()
        cluster_factory(extra_env=env, wait=False)

        def drained():
            runs.kick_delivery(soc.pk)
            return len(receiver.docs()) == total

        wait_for(drained, timeout=120, interval=0.5, message="every message in the index")
        docs = receiver.docs()
        assert len(docs) == total  # keyed by _id: a re-sent batch is a 409, never a copy
        assert receiver.problems == []
    finally:
        receiver.stop()
