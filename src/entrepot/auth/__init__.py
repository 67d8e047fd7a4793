"""Who is calling: credentials, principals and the bearer-token check."""
