"""The catalog's HTTP API: routes and the query strings they parse."""
