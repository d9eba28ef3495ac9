"""The dashboard's pages, one module per group: overview, claims, actors, topics, database."""
