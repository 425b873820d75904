"""The worker process: settings, Temporal client, wiring, graceful shutdown."""
