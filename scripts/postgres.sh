#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests, on loopback only, in a
# temporary directory, and prints the connection parameters (libpq form) on
# stdout. Stop it with: scripts/postgres.sh stop DIR (DIR is printed on stderr).
#
#   url=$(scripts/postgres.sh)   # e.g. host=127.0.0.1 port=55123 user=cardveil dbname=postgres
#
# Needs Debian's postgresql package (apt-get install postgresql). As root, the
# server runs as the postgres user (initdb refuses root).
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [[ -z $bin ]]; then
    echo "postgresql is not installed (apt-get install postgresql)" >&2
    exit 1
fi
as=()
if [[ $(id -u) == 0 ]]; then
    as=(runuser -u postgres --)
fi

if [[ ${1:-} == stop ]]; then
    "${as[@]}" "$bin/pg_ctl" -D "$2/data" -m immediate stop >/dev/null
    rm -rf "$2"
    exit 0
fi

dir=$(mktemp -d /tmp/cardveil-pg.XXXXXX)
chmod 755 "$dir"
[[ $(id -u) == 0 ]] && chown postgres "$dir"
"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U cardveil --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=50" start >/dev/null; then
        echo "postgres: $dir" >&2
        echo "host=127.0.0.1 port=$port user=cardveil dbname=postgres"
        exit 0
    fi
done
cat "$dir/server.log" >&2
exit 1
