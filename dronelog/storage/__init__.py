"""Storage adapters: tables, engine, migrations and the batch writer."""
