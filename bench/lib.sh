# bench/lib.sh: what the benchmark scripts share; sourced, from the
# repository's top directory.
#
# bench_start NAME: builds $build, makes $dir (a temporary directory),
# starts a private bus ($HB_BUS_ADDRESS) and arranges that on exit every
# pid added to the pids array is killed and $dir removed.
#
# $build is the build directory: as the sourcing script set it, else
# $HB_BUILD_DIR, else build (relative to the top directory, or absolute).
build=${build:-${HB_BUILD_DIR:-build}}

bench_start () {
  meson compile -C "$build" >/dev/null
  dir=$(mktemp -d "/tmp/hb-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  source tools/private-bus.sh
  hb_private_bus "$dir"
  pids+=("$HB_BUS_PID")
}

bench_cleanup () {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}

# free_port: a TCP port free on 127.0.0.1 now
free_port () { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 5 s)
wait_port () { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; }

# start_heartbeatd ARG...: the built heartbeatd on $HB_BUS_ADDRESS with its
# state in $dir (log: $dir/daemon.log), added to pids, once it owns its
# name; $daemon is its pid
start_heartbeatd () {
  DBUS_SESSION_BUS_ADDRESS="$HB_BUS_ADDRESS" \
    "$build"/src/daemon/heartbeatd --session --state-dir "$dir/state" "$@" 2>"$dir/daemon.log" &
  daemon=$!
  pids+=("$daemon")
  for _ in $(seq 100); do
    timeout 5 gdbus call --address "$HB_BUS_ADDRESS" --dest org.freedesktop.DBus \
      --object-path /org/freedesktop/DBus --method org.freedesktop.DBus.NameHasOwner \
      org.heartbeat.Monitor1 2>/dev/null | grep -q true && return 0
    kill -0 "$daemon" 2>/dev/null || { cat "$dir/daemon.log" >&2; exit 1; }
    sleep 0.05
  done
}
