"""PostgreSQL: connection pool, migrations, embedded server."""
