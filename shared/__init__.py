"""shared: what both storefront services use (settings, connections, auth, errors, logging)."""
