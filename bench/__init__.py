"""Benchmarks (`make bench`): each figure printed beside a raw baseline measured in the same run."""
