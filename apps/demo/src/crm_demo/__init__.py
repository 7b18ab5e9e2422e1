"""`make demo`: plays the sales guide against a running system over HTTP."""
