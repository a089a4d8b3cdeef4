# %postun: after an upgrade ($1 >= 1) the running agent moves to the new binary.
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if [ "$1" -ge 1 ]; then
    systemctl try-restart ecs-secrets-agent.service >/dev/null 2>&1 || :
  fi
fi
exit 0
