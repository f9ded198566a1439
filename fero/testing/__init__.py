"""Test helpers: the seeded in-memory network (`simnet`)."""
