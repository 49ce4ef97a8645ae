"""HTTP plumbing both services share: the app skeleton, problem+json errors, authentication,
request context, JSON in and out, idempotent writes, versions and cursors."""
