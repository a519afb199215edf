#!/usr/bin/env bash
# `make up`: the local tree, a district (杨浦区 310110) above two streets (长海路街道 310110012,
# 新江湾城街道 310110013), each with its own database, vhost, key and ports, federated through the
# local RabbitMQ exactly as separate machines would be (`linli child add` at the district).
# Every step is idempotent, so running it again on a tree that is up changes nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
RUN=var/run
LOG=var/log
STREET_A=deploy/config/local.yaml
STREET_B=deploy/config/local-310110013.yaml
DISTRICT=deploy/config/local-310110.yaml
STREETS=("$STREET_A" "$STREET_B")

linli() { "$BIN/linli" --config "$@"; }
setting() { linli "$1" check-config | sed -n "s/^$2=//p"; }
vhost() { setting "$1" AMQP_URI | sed 's|.*/||'; }
say() { printf '[up] %s\n' "$*"; }

for cfg in "$DISTRICT" "${STREETS[@]}"; do
  # Assigned first: a failure inside a substitution that is only an argument would not stop set -e.
  migrated=$(linli "$cfg" migrate | tail -n1)
  declared=$(linli "$cfg" topology apply | tail -n1)
  say "$(setting "$cfg" INSTANCE): $migrated, $declared"
done

# Each link runs as its own user, made by the side it reads from (`linli link-user add`): the
# district's may read only the street's facts and cases, the street's only the district's
# directives. The district trusts each street's key for the street's own subtree; the streets'
# PARENT_KEY is the district's key.
district_code=$(setting "$DISTRICT" NODE_CODE)
for cfg in "${STREETS[@]}"; do
  code=$(setting "$cfg" NODE_CODE)
  up_uri=$(linli "$cfg" link-user add --for "$district_code" --vhost "$(vhost "$DISTRICT")" | sed -n 's/^uri //p')
  down_uri=$(linli "$DISTRICT" link-user add --for "$code" --vhost "$(vhost "$cfg")" | sed -n 's/^uri //p')
  key=$(linli "$cfg" instance key)
  linli "$DISTRICT" child add --code "$code" --public-key "$key" --amqp-uri "$up_uri" | sed 's/^/[up] /'
  linli "$cfg" parent set --amqp-uri "$down_uri" | sed 's/^/[up] /'
done

for cfg in "$DISTRICT" "${STREETS[@]}"; do
  linli "$cfg" demo load | sed "s/^/[up] $(setting "$cfg" INSTANCE) /"
done

# The nodes' names and lineage for the levels above (a tree made before nodes were announced gets them
# now; announcing again changes nothing), and the dashboards' maps: the demo's made-up boundaries (linli/demo/make_boundaries.py), one district-wide
# file imported at each instance, which keeps the features inside it and skips the rest.
for cfg in "$DISTRICT" "${STREETS[@]}"; do
  linli "$cfg" nodes announce | sed "s/^/[up] $(setting "$cfg" INSTANCE) /"
  linli "$cfg" nodes boundaries import linli/demo/boundaries.geojson | sed "s/^/[up] $(setting "$cfg" INSTANCE) /"
done

# The processes of the Procfile under supervisord, which starts again whichever of them exits (with
# back-off while it keeps dying) and leaves the others alone; its settings are explained in
# deploy/local/supervisord_conf.py. supervisord detaches and writes $RUN/supervisord.pid;
# `make down` (deploy/local/down.sh) stops it and everything it runs.
mkdir -p "$RUN" "$LOG"
: > "$LOG/linli.log"
"$BIN/python" deploy/local/supervisord_conf.py --procfile Procfile --out "$RUN/supervisord.conf"
LINLI_CONFIG=$STREET_A PATH=$PWD/$BIN:$PATH "$BIN/supervisord" -c "$RUN/supervisord.conf"

for port in 8000 8001 8010; do
  for _ in $(seq 1 120); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || {
    say "the gateway on :$port did not become ready; see $LOG/linli.log"; tail -n 30 "$LOG/linli.log"; exit 1; }
done

for cfg in "${STREETS[@]}"; do
  linli "$cfg" demo notices | sed "s/^/[up] $(setting "$cfg" INSTANCE) /"
done

token() { linli "$1" token create --name "$2" --role "$3"; }
token "$STREET_A" "长海路街道 演示管理员" street_admin > "$RUN/demo-token"
token "$STREET_B" "新江湾城街道 演示管理员" street_admin > "$RUN/demo-token-310110013"
token "$DISTRICT" "杨浦区 演示分析员" district_analyst > "$RUN/demo-token-310110"

# The district's figures arrive over federation: wait until it counts every active resident of
# its streets' registers (final once demo load is done) from their facts.
count() {
  "$BIN/python" - "$1" "$2" <<'EOF'
import sys, psycopg
from shared.config import load
cfg = load(sys.argv[1], environ={})
with psycopg.connect(cfg["DATABASE_URL"]) as conn:
    print(conn.execute(sys.argv[2]).fetchone()[0])
EOF
}
registered="SELECT count(*) FROM registry.residents WHERE status = 'active'"
counted="SELECT coalesce(sum(n), 0) FROM aggregator.rollups WHERE node = '310110' AND metric = 'residents'
         AND period = 'year' AND dim = ''"
want=$(( $(count "$STREET_A" "$registered") + $(count "$STREET_B" "$registered") ))
for _ in $(seq 1 120); do
  have=$(count "$DISTRICT" "$counted")
  [ "$have" = "$want" ] && break
  sleep 0.5
done
[ "$have" = "$want" ] || say "the district holds $have of its streets' $want residents so far; see $LOG/linli.log"

# Staff accounts for the console, with passwords made afresh on each `make up` (printed below and kept in
# $RUN/demo-accounts): a street admin and two community workers of different communities at street A,
# an admin at street B, an analyst at the district.
account() { linli "$1" account create --username "$2" --name "$3" --role "$4" ${5:+--prefix "$5"} --reset-if-exists --no-forced-change; }
: > "$RUN/demo-accounts"; chmod 600 "$RUN/demo-accounts"   # passwords: for this machine's user only
while read -r cfg user name role prefix; do
  pass=$(account "$cfg" "$user" "$name" "$role" "$prefix" </dev/null)
  printf "%s %s %s\n" "$(setting "$cfg" NODE_CODE </dev/null)" "$user" "$pass" >> "$RUN/demo-accounts"
done <<ACCOUNTS
$STREET_A admin 长海路街道管理员 street_admin
$STREET_A wangli 王丽 community_worker 310110012001
$STREET_A liqiang 李强 community_worker 310110012002
$STREET_B admin 新江湾城街道管理员 street_admin
$DISTRICT analyst 杨浦区分析员 district_analyst
ACCOUNTS
pw() { awk -v c="$1" -v u="$2" '$1 == c && $2 == u {print $3}' "$RUN/demo-accounts"; }

A=$(cat "$RUN/demo-token") B=$(cat "$RUN/demo-token-310110013") D=$(cat "$RUN/demo-token-310110")
cat <<EOF

The local tree is up: district 310110 杨浦区 above streets 310110012 长海路街道 and 310110013 新江湾城街道.
  The district holds $have residents' figures from its streets' facts, and none of their records.

  Console (sign in with a user and password below; also in $RUN/demo-accounts)
  street 310110012         http://127.0.0.1:8000/console/
    admin    $(pw 310110012 admin)   street admin
    wangli   $(pw 310110012 wangli)   community worker, 长海一村 (310110012001)
    liqiang  $(pw 310110012 liqiang)   community worker, 长海二村 (310110012002)
  street 310110013         http://127.0.0.1:8001/console/
    admin    $(pw 310110013 admin)   street admin
  district 310110          http://127.0.0.1:8010/console/
    analyst  $(pw 310110 analyst)   district analyst

  instance                 API (Authorization: Bearer <token>)        metrics
  street 310110012         http://127.0.0.1:8000/api/v1/nodes        :9101-9105, gateway /metrics
    token                  $A   (also in $RUN/demo-token)
  street 310110013         http://127.0.0.1:8001/api/v1/nodes        :9111-9115, gateway /metrics
    token                  $B
  district 310110          http://127.0.0.1:8010/api/v1/rollups/headlines   :9121, :9123-9125
    token                  $D   (district_analyst)

  OpenAPI      http://127.0.0.1:8000/api/v1/openapi.json
  health       http://127.0.0.1:8000/healthz  /readyz (each gateway and metrics port)
  RabbitMQ     http://127.0.0.1:15672 (guest/guest; vhosts linli, linli-310110013, linli-310110; Admin > Federation Status)
  logs         $LOG/linli.log (make logs), one file per process in $LOG/
  processes    $BIN/supervisorctl -c $RUN/supervisord.conf status   (make status)
  try          curl -s -H "Authorization: Bearer $D" http://127.0.0.1:8010/api/v1/rollups/headlines
               curl -s -H "Authorization: Bearer $D" 'http://127.0.0.1:8010/api/v1/rollups?metric=residents&group=child&period=year'
  stop         make down
EOF
