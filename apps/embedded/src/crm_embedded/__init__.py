"""The whole CRM activity backbone in one process (the embedded default of `make run`)."""
