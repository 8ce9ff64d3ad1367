"""PostgreSQL: connections, the embedded server, migrations, the IO manager and Dagster's storage."""
