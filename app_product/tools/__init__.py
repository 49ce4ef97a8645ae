"""Commands an operator or developer runs against the catalog: demo data, drift repair."""
