"""pyflume sinks."""
