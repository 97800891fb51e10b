#!/bin/sh
# A custom executor in POSIX shell and busybox (nc, wget, sed, base64), for the
# Docker test image, which has no Python: it subscribes over a raw HTTP connection,
# and answers every LAUNCH with TASK_RUNNING, then TASK_FINISHED with the task's
# data echoed (a task whose data is "run" stays RUNNING).  It leaves on SHUTDOWN.
# What it does goes to stdout.
set -u
host=${MESOS_AGENT_ENDPOINT%:*}
port=${MESOS_AGENT_ENDPOINT##*:}
ids='"framework_id":{"value":"'$MESOS_FRAMEWORK_ID'"},"executor_id":{"value":"'$MESOS_EXECUTOR_ID'"}'
auth="Authorization: Bearer ${MESOS_EXECUTOR_AUTHENTICATION_TOKEN:-}"

update() {  # task id, state, data (base64)
    uuid=$(head -c 16 /dev/urandom | base64)
    body='{"type":"UPDATE",'$ids',"update":{"status":{"task_id":{"value":"'$1'"},"state":"'$2'","uuid":"'$uuid'"'${3:+,\"data\":\"$3\"}'}}}'
    wget -q -O /dev/null --header "Content-Type: application/json" --header "$auth" \
        --post-data "$body" "http://$MESOS_AGENT_ENDPOINT/api/v1/executor" \
        && echo "sent $2 for $1" || echo "UPDATE of $1 refused"
}

subscribe='{"type":"SUBSCRIBE",'$ids',"subscribe":{}}'
echo "subscribing to $MESOS_AGENT_ENDPOINT"
{
    printf 'POST /api/v1/executor HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n' "$host"
    printf '%s\r\nContent-Length: %d\r\n\r\n%s' "$auth" "${#subscribe}" "$subscribe"
    sleep 3600  # keeps the request side open: the events stream back
} | nc "$host" "$port" | while IFS= read -r line; do
    case "$line" in
    *'"type":"SUBSCRIBED"'*) echo "event SUBSCRIBED" ;;
    *'"type":"LAUNCH"'*)
        task=$(echo "$line" | sed 's/.*"task_id":{"value":"\([^"]*\)".*/\1/')
        data=$(echo "$line" | sed -n 's/.*"data":"\([^"]*\)".*/\1/p')
        echo "event LAUNCH $task"
        update "$task" TASK_RUNNING
        [ "$data" = "cnVu" ] || update "$task" TASK_FINISHED "$data" ;;
    *'"type":"SHUTDOWN"'*) echo "event SHUTDOWN"; kill 0 ;;
    esac
done
