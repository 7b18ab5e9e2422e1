"""`make bench`: speed, scale and memory, each against a baseline in the same run."""
