#!/bin/sh
# Init container of each pod of StatefulSet redis (prod): writes this pod's redis.conf and
# sentinel.conf. Every pod runs a Redis and a Sentinel; the Sentinels (quorum 2) promote a
# replica when the primary is down for 5 s, and the clients (KADES_REDIS_SENTINELS) ask them
# for the primary again after a failed command.
#
# The primary this pod follows, in this order:
#   1. the one a peer's Sentinel names now (a pod restarting beside a running group);
#   2. the one this pod's Sentinel monitored last (its file on the volume: the whole group
#      restarting after an outage must not fall back to redis-0 if another was primary);
#   3. redis-0 (the first start).
set -eu

: "${POD_NAME:?}" "${NAMESPACE:?}" "${REDIS_NODES:?}" "${REDIS_MEMORY_LIMIT_MI:?}"
MASTER=kades
# The cluster's DNS domain, which is cluster.local only by default: the pod's resolv.conf
# search list has a svc.<domain> entry, written by the kubelet for every pod.
RESOLV_CONF="${RESOLV_CONF:-/etc/resolv.conf}"  # another path only in the tests
CLUSTER_DOMAIN=$(awk '$1 == "search" { for (i = 2; i <= NF; i++) if ($i ~ /^svc\./) {
  print substr($i, 5); exit } }' "$RESOLV_CONF" 2>/dev/null || true)
DOMAIN="redis-headless.${NAMESPACE}.svc.${CLUSTER_DOMAIN:-cluster.local}"
SELF="${POD_NAME}.${DOMAIN}"
CONF_DIR="${CONF_DIR:-/conf}"  # both mounts of the pod; other paths only in the tests
DATA_DIR="${DATA_DIR:-/data}"
SENTINEL_DIR="${DATA_DIR}/sentinel"
SENTINEL_CONF="${SENTINEL_DIR}/sentinel.conf"
mkdir -p "$SENTINEL_DIR"

primary=""
i=0
while [ "$i" -lt "$REDIS_NODES" ] && [ -z "$primary" ]; do
  peer="redis-${i}.${DOMAIN}"
  if [ "$peer" != "$SELF" ]; then
    primary=$(timeout 3 redis-cli -h "$peer" -p 26379 --raw \
      SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER" 2>/dev/null | head -n 1) || primary=""
  fi
  i=$((i + 1))
done
if [ -z "$primary" ] && [ -f "$SENTINEL_CONF" ]; then
  primary=$(awk -v m="$MASTER" '$1 == "sentinel" && $2 == "monitor" && $3 == m { print $4 }' \
    "$SENTINEL_CONF")
fi
[ -n "$primary" ] || primary="redis-0.${DOMAIN}"
echo "pod ${POD_NAME}: primary is ${primary}"

# Redis: the append-only file on the volume; addressed by its stable name, not its pod IP.
# min-replicas-*: a primary cut off from every replica stops taking writes after 10 s, which
# bounds what it could acknowledge and then lose when the Sentinels promote another.
# maxmemory: 3/4 of the container's memory limit (REDIS_MEMORY_LIMIT_MI, from the downward
# API), so that a full Redis refuses writes (noeviction: the functions answer 503, the Broker
# retries) before the kernel OOM-kills it; the rest covers fragmentation, client and
# replication buffers and the copy-on-write pages of a fork (AOF rewrite, a replica's sync).
cat > "${CONF_DIR}/redis.conf" <<CONF
port 6379
dir ${DATA_DIR}
appendonly yes
appendfsync everysec
maxmemory $((REDIS_MEMORY_LIMIT_MI * 3 / 4))mb
maxmemory-policy noeviction
replica-announce-ip ${SELF}
min-replicas-to-write 1
min-replicas-max-lag 10
CONF
if [ "$primary" != "$SELF" ]; then
  echo "replicaof ${primary} 6379" >> "${CONF_DIR}/redis.conf"
fi

# Sentinel: a run id derived from the pod name, so a restarted Sentinel keeps its identity
# (the others would otherwise count a stale one and a failover could lack its majority).
cat > "$SENTINEL_CONF" <<CONF
port 26379
dir ${SENTINEL_DIR}
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SELF}
sentinel myid $(printf '%s' "$POD_NAME" | sha1sum | cut -c 1-40)
sentinel monitor ${MASTER} ${primary} 6379 2
sentinel down-after-milliseconds ${MASTER} 5000
sentinel failover-timeout ${MASTER} 60000
sentinel parallel-syncs ${MASTER} 1
CONF
