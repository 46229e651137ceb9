"""Qinglian platform kernel: event store, aggregates, relay, consumers, projections, auth, metrics."""
