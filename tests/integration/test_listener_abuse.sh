#!/usr/bin/env bash
# The listener holds under one local peer's abuse (issue 17): while a peer holds 300 idle
# connections (no byte sent) and 40 unauthenticated 1 MiB bodies sent slowly, the real aws
# CLI's calls succeed and a RunTask whose secrets the agent fetches through the same listener
# reaches RUNNING; the daemon's peak resident memory stays under ES_ABUSE_RSS_MAX_KB (default
# 150 MiB, room for a sanitizer build's shadow memory: before, 256 held bodies took a release
# build from 30 to 295 MB). The agent's own calls go through its unix socket (STATE_DIR/self.sock,
# mode 0600): checked here, with the daemon listening on no TCP port but the public one.
#
# Env (ctest passes them): ES_AGENT_BIN, ES_TEST_DOCKER_HOST.
set -euo pipefail
: "${ES_AGENT_BIN:?}" "${ES_TEST_DOCKER_HOST:?}"
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
it_workdir abuse
IT_FAIL_HEADER="---- agent log ----"
CLUSTER=abuse-$$
RSS_MAX_KB=${ES_ABUSE_RSS_MAX_KB:-153600}
it_endpoint
it_aws_env "$STATE" 1
ABUSER=
it_cleanup_hook() { if [[ -n $ABUSER ]]; then kill "$ABUSER" 2>/dev/null || true; fi; }

say "starting the agent (embedded) on $URL"
# a sanitizer build keeps freed memory in quarantine (256 MiB by default), which would measure
# ASan, not the listener: a small one still catches use after free
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8
it_start_agent --mode embedded --region us-east-2 --cluster "$CLUSTER"

say "the agent's own door: a unix socket of its owner's only, and no second TCP port"
SELF_SOCK=$STATE/self.sock
[[ -S $SELF_SOCK ]] || fail "no socket at $SELF_SOCK"
eq "$(stat -c '%a %u' "$SELF_SOCK")" "600 $(id -u)" "the socket's mode and owner"
# the TCP ports the daemon listens on: its socket descriptors' inodes in /proc/net/tcp{,6}
# in state 0A (LISTEN)
PORTS=$(/usr/bin/python3 - "$PID" <<'PYEOF'
import os, sys
pid = sys.argv[1]
inodes = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(t[8:-1])
ports = set()
for table in ("tcp", "tcp6"):
    with open(f"/proc/{pid}/net/{table}") as f:
        next(f)
        for line in f:
            c = line.split()
            if c[3] == "0A" and c[9] in inodes:
                ports.add(int(c[1].split(":")[1], 16))
print(" ".join(str(p) for p in sorted(ports)))
PYEOF
)
# besides the listener, only the container endpoints' own port (task role credentials and
# metadata v4: a door for containers, which the agent's own calls never use)
CEP=$(grep -o "container endpoints ([^)]*) on http://127.0.0.1:[0-9]*" "$LOG" | grep -o "[0-9]*$")
[[ -n $CEP ]] || fail "no start line for the container endpoints"
eq "$PORTS" "$(printf '%s\n' "$PORT" "$CEP" | sort -n | tr '\n' ' ' | sed 's/ $//')" \
  "the daemon's listening TCP ports (the listener, the container endpoints)"
aws ssm put-parameter --name /abuse/p --type SecureString --value "v-$RANDOM$RANDOM" >/dev/null
create_exec_role abuse-exec
aws iam put-role-policy --role-name abuse-exec --policy-name p --policy-document \
  '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameters","Resource":"*"}]}'
cat >"$WORK/td.json" <<'JSON'
{"family": "abuse", "executionRoleArn": "arn:aws:iam::123456789012:role/abuse-exec",
 "networkMode": "none",
 "containerDefinitions": [{"name": "app", "image": "local/busybox:latest",
   "command": ["sh", "-c", "sleep 300"], "stopTimeout": 2,
   "secrets": [{"name": "P", "valueFrom": "/abuse/p"}]}]}
JSON
aws ecs register-task-definition --cli-input-json "file://$WORK/td.json" >/dev/null

say "the peer: 300 idle connections, 40 slow unauthenticated 1 MiB bodies"
/usr/bin/python3 - "$PORT" "$WORK/abuser.ready" <<'PYEOF' &
import socket, sys, time, os
port, ready = int(sys.argv[1]), sys.argv[2]
idle, slow = [], []
for _ in range(300):
    s = socket.create_connection(("127.0.0.1", port)); idle.append(s)
head = ("POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSSM.GetParameter\r\n"
        "X-Amz-Date: 20990101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 "
        "Credential=AKIAAAAAAAAAAAAAAAAA/20990101/us-east-2/ssm/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00\r\n"
        "Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1048576\r\n\r\n").encode()
for _ in range(40):
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(head); slow.append(s)
    except OSError:
        pass
open(ready, "w").close()
chunk = b"a" * 65536
end = time.time() + 120
while time.time() < end:  # keep the bodies coming, and reopen what the server closed
    for i, s in enumerate(slow):
        try:
            s.sendall(chunk)
        except OSError:
            try:
                s = socket.create_connection(("127.0.0.1", port)); s.sendall(head); slow[i] = s
            except OSError:
                pass
    for i, s in enumerate(idle):
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                raise OSError
        except BlockingIOError:
            pass
        except OSError:
            try:
                idle[i] = socket.create_connection(("127.0.0.1", port))
            except OSError:
                pass
    time.sleep(0.2)
PYEOF
ABUSER=$!
for ((i = 0; i < 100; i++)); do [[ -e $WORK/abuser.ready ]] && break; sleep 0.1; done
[[ -e $WORK/abuser.ready ]] || fail "the abuser did not start"

say "meanwhile: the CLI's calls and a RunTask with a secret"
T0C=$(date +%s%N)
eq "$(aws ssm get-parameter --name /abuse/p --query Parameter.Name --output text)" /abuse/p "get-parameter"
eq "$(aws ecs list-task-definitions --query 'length(taskDefinitionArns)' --output text)" 1 "list"
TASK=$(aws ecs run-task --cluster "$CLUSTER" --task-definition abuse --query 'tasks[0].taskArn' --output text)
eq "$(wait_status "$TASK" RUNNING STOPPED)" RUNNING "the task under abuse"
say "answered in $((($(date +%s%N) - T0C) / 1000000)) ms"
RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$PID/status")
HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
say "the daemon's resident memory under abuse: $RSS kB (peak $HWM kB; bound $RSS_MAX_KB kB)"
[[ $HWM -le $RSS_MAX_KB ]] || fail "peak RSS $HWM kB over $RSS_MAX_KB kB"
kill "$ABUSER" 2>/dev/null || true
wait "$ABUSER" 2>/dev/null || true
ABUSER=
grep -q "ResourceInitializationError" "$LOG" && fail "a launch failed under abuse"

say "AllowedPattern off the loop: the issue's pattern refused by name, then a stop mid-match"
V17=$(/usr/bin/python3 -c 'print("a" * 1599 + "b")')
if OUT=$(aws ssm put-parameter --name /abuse/p17 --type String --value "$V17" \
  --allowed-pattern '^((a+)\2)+b$' 2>&1); then
  fail "the back-reference pattern was accepted"
fi
[[ $OUT == *ParameterPatternMismatchException* ]] || fail "back-reference pattern: $OUT"
[[ $OUT != *aaaaaaaaaaaaaaaa* ]] || fail "the refusal quoted the value: $OUT"
# three matches that each run until the store's CPU ceiling (200 ms), on the worker threads
VSLOW=$(/usr/bin/python3 -c 'print("a" * 8000 + "!")')
SLOW_PIDS=()
for i in 1 2 3; do
  aws ssm put-parameter --name "/abuse/slow$i" --type String --tier Advanced --value "$VSLOW" \
    --allowed-pattern '^(?:(?<=[a-z]{4000})a|a)*$' >/dev/null 2>&1 &
  SLOW_PIDS+=($!)
done
WAITING=0
for ((i = 0; i < 400; i++)); do
  WAITING=$(curl -sf "$URL/metrics" | awk '/^ecs_agent_http_deferred_waiting /{print $2}')
  [[ ${WAITING:-0} != 0 ]] && break
  sleep 0.02
done
[[ ${WAITING:-0} != 0 ]] || fail "no answer was seen waiting for a worker's match"
say "$WAITING answer(s) waiting for a match: SIGTERM"
it_stop_agent # fails unless it exits 0
for p in "${SLOW_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
grep -E "AddressSanitizer|LeakSanitizer|runtime error" "$LOG" && fail "a sanitizer report at the stop"
say "PASS"
