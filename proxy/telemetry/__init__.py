"""Logs, metrics and traces: handed to the pipeline by the app, never reached through globals."""
