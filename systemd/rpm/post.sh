# %post: directories and their modes, then systemd learns the unit. A first
# install leaves the service off until it is configured and enabled.
systemd-tmpfiles --create ecs-secrets-agent.conf >/dev/null 2>&1 || :
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
