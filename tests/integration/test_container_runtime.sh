#!/usr/bin/env bash
# Issue 20: the ContainerDefinition members that change what Docker is given, registered with
# the real aws CLI and run on the real dockerd. For each: describe-task-definition returns it
# as registered, `docker inspect` shows what Docker was given, and the container sees it.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir runtime
IT_TASK_SLEEP=0.25
it_aws_env "$STATE"
it_endpoint
# shellcheck disable=SC2032 # (lib.sh runs the docker binary itself)
docker() { command docker -H "$ES_TEST_DOCKER_HOST" "$@"; }
CLUSTER=default
it_start_agent

# run_task FAMILY: runs FAMILY, waits for RUNNING, prints the container's Docker id
run_task() {
  local arn s
  arn=$(aws ecs run-task --cluster "$CLUSTER" --task-definition "$1" --query 'tasks[0].taskArn' \
    --output text)
  s=$(wait_status "$arn" RUNNING STOPPED)
  [[ $s == RUNNING ]] || fail "$1: task is $s: $(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$arn")"
  aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$arn" \
    --query 'tasks[0].containers[0].runtimeId' --output text
}
# inspect CID GO-TEMPLATE: docker inspect -f, as JSON where the template says json
inspect() { docker inspect -f "$2" "$1"; }
# registered_as FAMILY FILE MEMBER...: describe-task-definition returns each MEMBER of
# containerDefinitions[0] as FILE's container 0 has it (one describe: the CLI is slow to start)
registered_as() {
  local family=$1 file=$2 m want got
  shift 2
  aws ecs describe-task-definition --task-definition "$family" >"$WORK/$family.described"
  for m in "$@"; do
    want=$(jq -c ".[0].$m" "$file")
    got=$(jq -c ".taskDefinition.containerDefinitions[0].$m" "$WORK/$family.described")
    eq "$got" "$want" "$family: describe-task-definition's $m"
  done
}

# ---- batch 1: hostname, extraHosts, DNS, privileges, root fs, stdin/TTY, security options,
# ulimits, sysctls, memoryReservation ----
cat >"$WORK/basics.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","memory":64,"memoryReservation":32,
  "entryPoint":["/bin/sh","-c"],
  "command":["hostname; grep -w db /etc/hosts; cat /etc/resolv.conf; ulimit -Sn; ulimit -Hn; cat /proc/sys/kernel/shmmax /proc/sys/net/core/somaxconn; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; if touch /ro 2>/dev/null; then echo rw; else echo ro; fi; if [ -t 1 ]; then echo tty; fi; echo done; sleep 600"],
  "hostname":"runtime-app","extraHosts":[{"hostname":"db","ipAddress":"10.0.0.3"}],
  "dnsServers":["10.0.0.2"],"dnsSearchDomains":["example.internal"],
  "privileged":false,"readonlyRootFilesystem":true,"interactive":true,"pseudoTerminal":true,
  "disableNetworking":false,"dockerSecurityOptions":["no-new-privileges"],
  "ulimits":[{"name":"nofile","softLimit":1024,"hardLimit":2048}],
  "systemControls":[{"namespace":"kernel.shmmax","value":"65536"},
                    {"namespace":"net.core.somaxconn","value":"511"}],
  "stopTimeout":1}]
EOF
aws ecs register-task-definition --family basics --network-mode none \
  --container-definitions "file://$WORK/basics.json" >/dev/null
registered_as basics "$WORK/basics.json" memoryReservation hostname extraHosts dnsServers \
  dnsSearchDomains privileged readonlyRootFilesystem interactive pseudoTerminal disableNetworking \
  dockerSecurityOptions ulimits systemControls
say "basics: every member described as registered"
CID=$(run_task basics)
eq "$(inspect "$CID" '{{.Config.Hostname}}')" runtime-app "Config.Hostname"
eq "$(inspect "$CID" '{{json .HostConfig.ExtraHosts}}')" '["db:10.0.0.3"]' "HostConfig.ExtraHosts"
eq "$(inspect "$CID" '{{json .HostConfig.Dns}}')" '["10.0.0.2"]' "HostConfig.Dns"
eq "$(inspect "$CID" '{{json .HostConfig.DnsSearch}}')" '["example.internal"]' "HostConfig.DnsSearch"
eq "$(inspect "$CID" '{{.HostConfig.Privileged}} {{.HostConfig.ReadonlyRootfs}}')" "false true" \
  "Privileged ReadonlyRootfs"
eq "$(inspect "$CID" '{{.Config.OpenStdin}} {{.Config.Tty}} {{.Config.NetworkDisabled}}')" \
  "true true false" "OpenStdin Tty NetworkDisabled"
eq "$(inspect "$CID" '{{json .HostConfig.SecurityOpt}}')" '["no-new-privileges"]' "SecurityOpt"
eq "$(inspect "$CID" '{{json .HostConfig.Ulimits}}')" '[{"Name":"nofile","Hard":2048,"Soft":1024}]' \
  "HostConfig.Ulimits"
eq "$(inspect "$CID" '{{json .HostConfig.Sysctls}}')" \
  '{"kernel.shmmax":"65536","net.core.somaxconn":"511"}' "HostConfig.Sysctls"
eq "$(inspect "$CID" '{{.HostConfig.MemoryReservation}} {{.HostConfig.Memory}}')" \
  "$((32 << 20)) $((64 << 20))" "MemoryReservation Memory"
wait_container_log "$CID" 40 0.25 '^done' || fail "the container did not report: $(docker logs "$CID" 2>&1)"
SEEN=$(docker logs "$CID" 2>&1 | tr -d '\r')
printf '%s\n' "$SEEN" >"$WORK/basics.seen"
want_line() { grep -qxF -- "$1" "$WORK/basics.seen" || fail "the container does not see '$1': $SEEN"; }
want_line runtime-app
want_line $'10.0.0.3\tdb'
want_line "search example.internal"
want_line "nameserver 10.0.0.2"
want_line 1024
want_line 2048
want_line 65536
want_line 511
want_line $'NoNewPrivs:\t1'
want_line ro
want_line tty
say "basics: Docker was given each member and the container sees it"

# ---- batch 2: linuxParameters ----
cat >"$WORK/linux.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","memory":64,
  "entryPoint":["/bin/sh","-c"],
  "command":["tr '\\0' ' ' </proc/1/cmdline; echo; grep CapEff /proc/self/status; df -k /dev/shm /scratch | tail -2; mount | grep ' /scratch '; if [ -c /dev/mynull ]; then echo dev; fi; echo done; sleep 600"],
  "linuxParameters":{"capabilities":{"add":["NET_ADMIN"],"drop":["CHOWN"]},
    "devices":[{"hostPath":"/dev/null","containerPath":"/dev/mynull","permissions":["read","write"]}],
    "initProcessEnabled":true,"sharedMemorySize":16,
    "tmpfs":[{"containerPath":"/scratch","size":8,"mountOptions":["noexec"]}],
    "maxSwap":32,"swappiness":10},
  "stopTimeout":1}]
EOF
aws ecs register-task-definition --family linux --network-mode none \
  --container-definitions "file://$WORK/linux.json" >/dev/null
registered_as linux "$WORK/linux.json" linuxParameters
CID=$(run_task linux)
eq "$(inspect "$CID" '{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}')" \
  '["NET_ADMIN"] ["CHOWN"]' "HostConfig.CapAdd CapDrop"
eq "$(inspect "$CID" '{{json .HostConfig.Devices}}')" \
  '[{"PathOnHost":"/dev/null","PathInContainer":"/dev/mynull","CgroupPermissions":"rw"}]' \
  "HostConfig.Devices"
eq "$(inspect "$CID" '{{.HostConfig.Init}} {{.HostConfig.ShmSize}}')" "true $((16 << 20))" "Init ShmSize"
eq "$(inspect "$CID" '{{json .HostConfig.Tmpfs}}')" '{"/scratch":"size=8m,noexec"}' "HostConfig.Tmpfs"
eq "$(inspect "$CID" '{{.HostConfig.MemorySwap}} {{.HostConfig.MemorySwappiness}}')" \
  "$(((64 + 32) << 20)) 10" "MemorySwap (memory + maxSwap) MemorySwappiness"
wait_container_log "$CID" 40 0.25 '^done' || fail "the container did not report: $(docker logs "$CID" 2>&1)"
docker logs "$CID" >"$WORK/linux.seen" 2>&1
SEEN=$(cat "$WORK/linux.seen")
grep -q '^/sbin/docker-init -- ' "$WORK/linux.seen" || fail "init: PID 1 is not Docker's init: $SEEN"
grep -qE '^shm +16384 ' "$WORK/linux.seen" || fail "sharedMemorySize: $SEEN"
grep -qE '^tmpfs +8192 .* /scratch$' "$WORK/linux.seen" || fail "tmpfs size: $SEEN"
grep -q ' /scratch type tmpfs (.*noexec' "$WORK/linux.seen" || fail "tmpfs options: $SEEN"
grep -qx dev "$WORK/linux.seen" || fail "devices: /dev/mynull is missing: $SEEN"
CAPS=$(sed -n 's/^CapEff:\t//p' "$WORK/linux.seen")
(((0x$CAPS >> 12) & 1)) || fail "NET_ADMIN was not added: CapEff $CAPS"
(((0x$CAPS & 1) == 0)) || fail "CHOWN was not dropped: CapEff $CAPS"
say "linuxParameters: Docker was given each member and the container sees it"

# privileged: this test engine runs inside a container whose capability bounding set lacks
# some capabilities, so runc cannot start a privileged container here and the agent removes
# the container it created. What shows Docker was given Privileged is Docker's own refusal,
# "unable to apply caps", in the task's stoppedReason (the same task without privileged runs:
# basics above). On a host that can, the task runs and inspect shows it.
cat >"$WORK/priv.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","command":["sleep","600"],"privileged":true,
  "stopTimeout":1}]
EOF
aws ecs register-task-definition --family priv --network-mode none \
  --container-definitions "file://$WORK/priv.json" >/dev/null
registered_as priv "$WORK/priv.json" privileged
ARN=$(aws ecs run-task --cluster "$CLUSTER" --task-definition priv --query 'tasks[0].taskArn' \
  --output text)
S=$(wait_status "$ARN" RUNNING STOPPED)
if [[ $S == RUNNING ]]; then
  PCID=$(docker ps -q --filter "label=com.amazonaws.ecs.task-arn=$ARN")
  eq "$(inspect "$PCID" '{{.HostConfig.Privileged}}')" true "HostConfig.Privileged"
  say "privileged: the engine runs it"
else
  REASON=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$ARN" \
    --query 'tasks[0].stoppedReason' --output text)
  grep -q "CannotStartContainerError.*unable to apply caps" <<<"$REASON" ||
    fail "privileged: stopped for $REASON"
  say "privileged: given to Docker; this engine cannot apply every capability: $REASON"
fi

# ---- pidMode and ipcMode (task members): the host's PID namespace, a private IPC one without
# /dev/shm; task refused with the reason ----
say "pidMode host, ipcMode none"
cat >"$WORK/ns.json" <<'EOF'
[{"name":"app","image":"local/busybox:latest","entryPoint":["/bin/sh","-c"],
  "command":["cat /proc/1/comm; if [ -e /dev/shm ]; then echo shm; else echo no-shm; fi; echo done; sleep 600"],
  "stopTimeout":1}]
EOF
aws ecs register-task-definition --family ns --network-mode none --pid-mode host --ipc-mode none \
  --container-definitions "file://$WORK/ns.json" >/dev/null
eq "$(aws ecs describe-task-definition --task-definition ns \
  --query 'taskDefinition.[pidMode,ipcMode]' --output text)" "host	none" "pidMode and ipcMode described"
NCID=$(run_task ns)
eq "$(inspect "$NCID" '{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}')" "host none" \
  "HostConfig.PidMode and IpcMode"
wait_container_log "$NCID" 40 0.25 -x done || fail "ns: the container did not print its checks"
NLOG=$(docker logs "$NCID" 2>&1)
eq "$(sed -n 1p <<<"$NLOG")" "$(cat /proc/1/comm)" "the container's PID 1 is the host's"
eq "$(sed -n 2p <<<"$NLOG")" no-shm "ipcMode none: no /dev/shm"
expect_error ClientException "pause container" ecs register-task-definition --family ns2 \
  --pid-mode task --container-definitions "file://$WORK/ns.json"
expect_error ClientException "IPC namespace" ecs register-task-definition --family ns3 \
  --ipc-mode host --container-definitions \
  '[{"name":"a","image":"local/busybox:latest","memory":16,"systemControls":[{"namespace":"kernel.shmmax","value":"1"}]}]'
echo "container runtime members: described as registered, given to Docker, seen in the container"
