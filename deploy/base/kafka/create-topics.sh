#!/bin/sh
# Create every topic in topics.txt (idempotent): run by compose's kafka-topics service and by
# the Kubernetes topics Job.
set -eu
BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
REPLICATION="${TOPIC_REPLICATION_FACTOR:-1}"
TOPICS_FILE="${TOPICS_FILE:-/topics/topics.txt}"
KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"

grep -v '^#' "$TOPICS_FILE" | while read -r topic partitions configs; do
  [ -n "$topic" ] || continue
  set -- --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$topic" \
    --partitions "$partitions" --replication-factor "$REPLICATION"
  for config in $(echo "$configs" | tr ',' ' '); do
    set -- "$@" --config "$config"
  done
  "$KAFKA_TOPICS" "$@"
done
echo "topics ready"
