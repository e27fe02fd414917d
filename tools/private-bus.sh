# tools/private-bus.sh: sourced by the scripts that need a private D-Bus
# session bus (tools/run.sh, bench/*.sh).
#
#   hb_private_bus DIR     writes DIR/bus.conf, starts dbus-daemon listening
#                          on DIR/bus, waits for the socket; sets HB_BUS_PID
#                          and HB_BUS_ADDRESS (stop it with kill "$HB_BUS_PID")

hb_private_bus () {
  local dir=$1
  cat > "$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
  rm -f "$dir/bus"
  dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>/dev/null &
  HB_BUS_PID=$!
  HB_BUS_ADDRESS="unix:path=$dir/bus"
  local i
  for i in $(seq 100); do [ -S "$dir/bus" ] && return 0; sleep 0.05; done
  echo "dbus-daemon did not start" >&2
  return 1
}
