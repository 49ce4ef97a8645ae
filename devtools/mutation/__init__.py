"""Mutation testing of the core (scripts/mutation): mutmut over the Python modules, each with the
fast subset of tests that covers it, and hand-written mutants of the SQL and Lua that mutmut
cannot reach (it does not look inside strings or .lua files)."""
