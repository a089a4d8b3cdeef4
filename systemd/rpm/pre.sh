# %pre: the system user, before the files arrive (agent.conf belongs to its group).
if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers - <<'SYSUSERS'
@SYSUSERS_TEXT@
SYSUSERS
else
  getent group docker >/dev/null || groupadd -r docker
  getent passwd ecs-secrets-agent >/dev/null ||
    useradd -r -U -G docker -M -d /var/lib/ecs-secrets-agent -s /sbin/nologin \
      -c "ECS secrets agent" ecs-secrets-agent
fi
exit 0
