"""Shared runtime pieces of the CRM services: messaging, and (later) auth and HTTP errors."""
