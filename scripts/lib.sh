# Sourced by the scripts in this folder: the project root, the virtualenv on PATH, .env if any,
# and the local service URLs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
# The services default to ENV=production (secure by default); a local run is development.
export ENV="${ENV:-development}"
if [ -f .env ]; then
    set -a
    # shellcheck disable=SC1091
    . ./.env
    set +a
fi

# Make sure PostgreSQL and Redis are reachable: the configured URLs (CATALOG_DATABASE_URL,
# CART_DATABASE_URL, REDIS_URL) where set, local servers under .data/ for whatever is not.
ensure_services() {
    if [ -z "${CATALOG_DATABASE_URL:-}" ] || [ -z "${CART_DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
        local line name value
        while read -r line; do
            line="${line#export }"
            name="${line%%=*}"
            value="${line#*=}"
            [ -n "${!name:-}" ] || export "$name=$value"
        done < <(python -m devtools.devservers up --dir "$ROOT/.data")
    fi
    python -m devtools.devservers check
}
