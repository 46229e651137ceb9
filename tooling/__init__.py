"""The node-wide tooling: the ``qinglian`` CLI, backup and restore, the demo, a local
network of nodes, a district's seeded year (scenario). Above the kernel and the services (it may import both; neither imports
it: tests/unit/kernel/test_layers.py)."""
