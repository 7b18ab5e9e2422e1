"""calendar_sync."""
