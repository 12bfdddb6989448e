"""pyflume: a Python agent runtime for Apache Flume configuration files."""

__version__ = "0.1.0"
