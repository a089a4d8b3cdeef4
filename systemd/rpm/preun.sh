# %preun: an erase ($1 = 0) stops and disables the service; an upgrade does not.
if [ "$1" -eq 0 ]; then
  systemctl --no-reload disable --now ecs-secrets-agent.service >/dev/null 2>&1 || :
fi
exit 0
