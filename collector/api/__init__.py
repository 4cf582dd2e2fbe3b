"""The JSON API in the Sumo Logic Collector Management dialect (contract: sumo-api.md; usage with
curl: the README).

- common: routing, authentication, CSRF, permissions, JSON bodies, error shapes, ETags
- collectors, sources: Collector Management (legacy error shape)
- fields, health: Fields and Health Events (newer error shape)
- status: the health status of all sources and of the task cluster

Views only parse, validate through collector.forms and call collector.services.
"""
