"""Cross-node transport primitives: the signed envelope, the registry of trusted nodes,
and the broker-level federation links between the city and its districts.

- ``envelope``: sign/verify the envelope every cross-node message carries, sharing
  levels (``audience``), node keys.
- ``registry``: trusted nodes on the node database (SQLAlchemy Core), a ``KeyResolver``.
- ``broker``: RabbitMQ federation links through the management API, the city/district
  ``Topology``, routing keys ``<kind>.<origin>.<type>``.
"""
