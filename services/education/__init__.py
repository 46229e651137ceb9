"""教育 - the education service: sessions, check-ins, rotations, notices, integrity talks."""
