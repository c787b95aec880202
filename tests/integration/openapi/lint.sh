#!/bin/sh
# lint.sh PROXY: the document the proxy serves, under Redocly CLI's
# "recommended" rules (errors fail; warnings are printed), then the README's
# TypeScript recipe: openapi-typescript generates the types and tsc --strict
# compiles them. The tools come from the npm registry through npx, pinned:
# without npx, or offline, the test is skipped (exit 77), never passed.
set -u
REDOCLY=@redocly/cli@2.77.0
OPENAPI_TS=openapi-typescript@7.13.0
TYPESCRIPT=typescript@5
if ! command -v npx >/dev/null 2>&1; then
    echo "lint.sh: skipped: no npx (install Node.js to lint the OpenAPI document)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$1" --openapi >"$dir/openapi.json" || exit 1

offline() {
    printf '%s' "$1" | grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH'
}
run() {
    out=$(cd "$dir" && npx --yes "$@" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '[║╔╚]'
    if [ "$rc" -ne 0 ] && offline "$out"; then
        echo "lint.sh: skipped: the npm registry is unreachable"
        exit 77
    fi
    [ "$rc" -eq 0 ] || exit "$rc"
}

run "$REDOCLY" lint --extends recommended --format stylish openapi.json
run "$OPENAPI_TS" openapi.json -o rstmdb-proxy.d.ts
run -p "$TYPESCRIPT" tsc --noEmit --strict rstmdb-proxy.d.ts
grep -q 'GetInstanceResult: {' "$dir/rstmdb-proxy.d.ts" || {
    echo "lint.sh: the generated types lack GetInstanceResult"
    exit 1
}
echo "lint.sh: lint clean of errors; TypeScript types generated and compiled"
