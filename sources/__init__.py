"""pyflume sources."""
