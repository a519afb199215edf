#!/usr/bin/env bash
# Make PostgreSQL and RabbitMQ (with management + federation) available on this machine:
# install them from Debian packages if missing, start them if stopped, reuse them if running.
# Then create the databases and vhosts named by the arguments (pairs: DB VHOST [DB VHOST ...]).
# Idempotent.
set -euo pipefail
[ $# -gt 0 ] || set -- linli linli
[ $(( $# % 2 )) = 0 ] || { echo "usage: $0 DB VHOST [DB VHOST ...]" >&2; exit 2; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

say() { printf '[ensure-services] %s\n' "$*"; }

need_install=()
command -v curl >/dev/null 2>&1 || need_install+=(curl)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_install+=(python3-venv)
command -v pg_ctlcluster >/dev/null 2>&1 || need_install+=(postgresql postgresql-contrib)
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ] || need_install+=(rabbitmq-server)
if [ ${#need_install[@]} -gt 0 ]; then
  say "installing ${need_install[*]} from Debian packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

# PostgreSQL
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  ver=$(ls /etc/postgresql | sort -n | tail -n1)
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { say "PostgreSQL did not come up"; exit 1; }
PSQL=(psql -w -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qtA)
if ! "${PSQL[@]}" -c "select 1" >/dev/null 2>&1; then
  # Fresh Debian install: local peer auth only; allow trust on loopback for the dev instance.
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | tail -n1)
  say "enabling trust auth on 127.0.0.1 in $hba (development machine)"
  $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  if [ -n "$SUDO" ]; then sudo -u postgres psql -qtAc "select pg_reload_conf()" >/dev/null
  else su postgres -c "psql -qtAc 'select pg_reload_conf()'" >/dev/null; fi
  sleep 1
fi
ensure_database() {
  if [ "$("${PSQL[@]}" -c "select 1 from pg_database where datname = '$1'")" != 1 ]; then
    say "creating database $1"
    "${PSQL[@]}" -c "create database \"$1\""
  fi
}

# RabbitMQ (its CLI needs the Erlang cookie, which only root and the rabbitmq user can read)
RMQCTL=(${SUDO} "$(PATH=$PATH:/usr/sbin command -v rabbitmqctl)")
RMQPLUGINS=(${SUDO} "$(PATH=$PATH:/usr/sbin command -v rabbitmq-plugins)")
if ! "${RMQCTL[@]}" -q status >/dev/null 2>&1; then
  say "starting RabbitMQ"
  $SUDO "$(PATH=$PATH:/usr/sbin command -v rabbitmq-server)" -detached
  for _ in $(seq 1 60); do "${RMQCTL[@]}" -q status >/dev/null 2>&1 && break; sleep 1; done
fi
"${RMQCTL[@]}" -q await_startup >/dev/null
plugins=(rabbitmq_management rabbitmq_federation rabbitmq_federation_management rabbitmq_shovel rabbitmq_shovel_management)
missing=()
enabled=$("${RMQPLUGINS[@]}" list -e -m 2>/dev/null || true)
for p in "${plugins[@]}"; do grep -qx "$p" <<<"$enabled" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "enabling RabbitMQ plugins: ${missing[*]}"
  "${RMQPLUGINS[@]}" enable -q "${missing[@]}" >/dev/null
fi
for _ in $(seq 1 30); do
  curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break; sleep 1
done
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null || { say "RabbitMQ management API not reachable"; exit 1; }
while [ $# -gt 0 ]; do
  ensure_database "$1"
  "${RMQCTL[@]}" -q add_vhost "$2" >/dev/null 2>&1 || true
  "${RMQCTL[@]}" -q set_permissions -p "$2" guest '.*' '.*' '.*' >/dev/null
  say "PostgreSQL database '$1' and RabbitMQ vhost '$2' are ready"
  shift 2
done
