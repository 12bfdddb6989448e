"""pyflume channels."""
