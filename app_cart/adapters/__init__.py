"""The cart's way out to other systems: its SQL (one module per table family) and the catalog."""
