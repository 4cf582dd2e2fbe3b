"""Destination kinds with small batches, so that a chaos test's kills land between batches.

Registered by dotted path (``tests.support.small_batches.ElasticBulk50``) in a cluster's
``SUMOSOURCES_DESTINATION_KINDS``; the protocol is the real kind's, unchanged.
"""

from collector.destinations.elastic import ElasticBulkKind


class ElasticBulk50(ElasticBulkKind):
    max_batch_messages = 50
