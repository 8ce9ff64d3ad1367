"""PostgreSQL: connections, embedded server, migrations, the IO manager and Dagster's storage."""
