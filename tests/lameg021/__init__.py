"""laMEG 0.2.1 test suite run against lameg (see README.md)."""
