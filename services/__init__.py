"""Qinglian nameko services, one bounded context each."""
