"""单位与责任体系: the unit tree, people, responsibility lists and letters, 微权力清单."""
