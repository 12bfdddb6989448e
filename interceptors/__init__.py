"""pyflume interceptors."""
