"""`make up`: the production-like mode on one machine (each service's processes, a token issuer)."""
