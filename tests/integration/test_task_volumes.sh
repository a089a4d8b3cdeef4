#!/usr/bin/env bash
# Issue 20: volumes, mountPoints, volumesFrom and portMappings, registered with the real aws
# CLI and run on the real dockerd: a host directory bind-mounted, a Docker volume the task
# owns shared with a second container through volumesFrom (one writes, the other reads), the
# volume removed with the task's containers after the cleanup wait, and a port of the host
# network mode reached with curl.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir volumes
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=default
it_start_agent --task-cleanup-wait 1s

HOSTDIR=$WORK/hostdir
mkdir -p "$HOSTDIR"
echo from-host >"$HOSTDIR/host-file"
chmod 0777 "$HOSTDIR"

# ---- refusals name the field ----
expect_error ClientException "volumes[0].efsVolumeConfiguration: Amazon EFS" \
  ecs register-task-definition --family refused --volumes \
  '[{"name":"v","efsVolumeConfiguration":{"fileSystemId":"fs-1"}}]' \
  --container-definitions '[{"name":"a","image":"local/busybox:latest"}]'
expect_error ClientException "containerDefinitions[0].mountPoints[0].sourceVolume: 'nope' is not" \
  ecs register-task-definition --family refused --volumes '[{"name":"v"}]' \
  --container-definitions \
  '[{"name":"a","image":"local/busybox:latest","mountPoints":[{"sourceVolume":"nope","containerPath":"/x"}]}]'
expect_error ClientException "containerDefinitions[0].portMappings: a task in the none network" \
  ecs register-task-definition --family refused --network-mode none \
  --container-definitions '[{"name":"a","image":"local/busybox:latest","portMappings":[{"containerPort":80}]}]'
say "refusals name the field"

# ---- a bind mount and a task-scoped volume shared through volumesFrom ----
# the reader comes first in the list: the agent creates its volumesFrom source before it
cat >"$WORK/containers.json" <<EOF
[{"name":"reader","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1,
  "volumesFrom":[{"sourceContainer":"writer","readOnly":true}]},
 {"name":"writer","image":"local/busybox:latest","command":["sleep","600"],"stopTimeout":1,
  "mountPoints":[{"sourceVolume":"data","containerPath":"/data"},
                 {"sourceVolume":"scratch","containerPath":"/scratch","readOnly":false}]}]
EOF
cat >"$WORK/volumes.json" <<EOF
[{"name":"data","host":{"sourcePath":"$HOSTDIR"}},
 {"name":"scratch","dockerVolumeConfiguration":{"scope":"task","driver":"local","labels":{"team":"qa"}}}]
EOF
aws ecs register-task-definition --family vols --network-mode none \
  --volumes "file://$WORK/volumes.json" \
  --container-definitions "file://$WORK/containers.json" >/dev/null
aws ecs describe-task-definition --task-definition vols >"$WORK/vols.described"
eq "$(jq -c '.taskDefinition.volumes' "$WORK/vols.described")" "$(jq -c . "$WORK/volumes.json")" \
  "describe-task-definition's volumes"
eq "$(jq -c '[.taskDefinition.containerDefinitions[] | {volumesFrom, mountPoints}]' "$WORK/vols.described")" \
  "$(jq -c '[.[] | {volumesFrom, mountPoints}]' "$WORK/containers.json")" \
  "describe-task-definition's volumesFrom and mountPoints"
say "volumes, mountPoints, volumesFrom described as registered"

TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition vols --query 'tasks[0].taskArn' \
  --output text)
s=$(wait_status "$TASK" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "vols: task is $s: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK")"
TID=${TASK##*/}
cid() {
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$TASK" \
    --query "tasks[0].containers[?name=='$1'].runtimeId | [0]" --output text
}
READER=$(cid reader)
WRITER=$(cid writer)
VOL=ecs-$TID-1-scratch
eq "$(docker inspect -f '{{json .HostConfig.Binds}}' "$WRITER")" \
  "[\"$HOSTDIR:/data\",\"$VOL:/scratch\"]" "writer's HostConfig.Binds"
# (Source of the volume is under the harness engine's data root)
eq "$(docker inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.RW}};{{end}}' "$WRITER" | tr ';' '\n' | sed '/^$/d' | sort | tr '\n' ';')" \
  "bind  /data true;volume $VOL /scratch true;" "writer's Mounts"
eq "$(docker inspect -f '{{range .Mounts}}{{if eq .Type "bind"}}{{.Source}}{{end}}{{end}}' "$WRITER")" \
  "$HOSTDIR" "the bind mount's source"
eq "$(docker inspect -f '{{json .HostConfig.VolumesFrom}}' "$READER")" "[\"$WRITER:ro\"]" \
  "reader's HostConfig.VolumesFrom"
eq "$(docker inspect -f '{{range .Mounts}}{{.Destination}} {{.RW}};{{end}}' "$READER" | tr ';' '\n' | sed '/^$/d' | sort | tr '\n' ';')" \
  "/data false;/scratch false;" "reader's Mounts (read-only through volumesFrom)"
eq "$(docker volume inspect -f '{{index .Labels "com.amazonaws.ecs.task-arn"}} {{index .Labels "team"}}' "$VOL")" \
  "$TASK qa" "the task's volume is labelled with the task"
docker exec "$WRITER" sh -c 'echo shared-by-volume >/scratch/f; echo written-in-container >/data/out'
eq "$(docker exec "$READER" cat /scratch/f)" shared-by-volume "the reader sees the writer's file"
eq "$(docker exec "$READER" cat /data/host-file)" from-host "the reader sees the host directory"
eq "$(cat "$HOSTDIR/out")" written-in-container "the host sees the container's file"
if docker exec "$READER" sh -c 'echo x >/scratch/g' 2>/dev/null; then
  fail "volumesFrom readOnly: the reader could write"
fi
say "bind mount and task volume shared through volumesFrom: written in one, read in the other"

aws ecs stop-task --cluster "$CLUSTER" --task "$TASK" >/dev/null
eq "$(wait_status "$TASK" STOPPED)" STOPPED "vols stopped"
for ((i = 0; i < 80; i++)); do
  if ! docker inspect "$WRITER" >/dev/null 2>&1 && ! docker volume inspect "$VOL" >/dev/null 2>&1; then
    break
  fi
  sleep 0.25
done
docker inspect "$WRITER" >/dev/null 2>&1 && fail "the writer container was not removed"
docker volume inspect "$VOL" >/dev/null 2>&1 && fail "the task's volume $VOL was not removed"
say "the task's volume was removed with its containers"

# ---- host network mode: the container's port is the host's ----
HPORT=$(it_free_port)
cat >"$WORK/web.json" <<EOF
[{"name":"web","image":"local/busybox:latest","stopTimeout":1,
  "entryPoint":["/bin/sh","-c"],
  "command":["mkdir -p /www && echo hello-from-port > /www/index.html && exec httpd -f -p 127.0.0.1:$HPORT -h /www"],
  "portMappings":[{"containerPort":$HPORT,"hostPort":$HPORT,"protocol":"tcp"}]}]
EOF
aws ecs register-task-definition --family web --network-mode host \
  --container-definitions "file://$WORK/web.json" >/dev/null
eq "$(aws ecs describe-task-definition --task-definition web --query 'taskDefinition.containerDefinitions[0].portMappings' --output json | jq -c .)" \
  "$(jq -c '.[0].portMappings' "$WORK/web.json")" "describe-task-definition's portMappings"
WEB=$(aws ecs run-task --cluster "$CLUSTER" --task-definition web --query 'tasks[0].taskArn' --output text)
s=$(wait_status "$WEB" RUNNING STOPPED)
[[ $s == RUNNING ]] || fail "web: task is $s: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$WEB")"
WCID=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$WEB" --query 'tasks[0].containers[0].runtimeId' --output text)
eq "$(docker inspect -f '{{.HostConfig.NetworkMode}} {{json .Config.ExposedPorts}}' "$WCID")" \
  "host {\"$HPORT/tcp\":{}}" "NetworkMode and ExposedPorts"
got=
for ((i = 0; i < 40; i++)); do
  got=$(curl -fsS "http://127.0.0.1:$HPORT/" 2>/dev/null) && break
  sleep 0.25
done
eq "$got" hello-from-port "curl to the host-mode port"
say "host-mode port reached with curl"
aws ecs stop-task --cluster "$CLUSTER" --task "$WEB" >/dev/null
eq "$(wait_status "$WEB" STOPPED)" STOPPED "web stopped"
it_stop_agent
say "ok"
