"""Low-latency alert service ``dingo_serve``: alerts in over HTTP (or a watched folder, or Kafka),
posteriors and sky maps out, jobs persisted in SQLite; see docs/serve.md."""
