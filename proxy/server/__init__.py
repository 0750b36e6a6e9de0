"""The HTTP server: app assembly, routes, the wrappers every request passes, workers and process tuning."""
