"""crm_platform."""
