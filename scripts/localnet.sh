#!/usr/bin/env bash
# A local network of ledgerd processes on loopback.
#
#   scripts/localnet.sh start [N]   build, generate N validator homes (default 4) if absent, start them
#   scripts/localnet.sh stop        stop every node (SIGTERM)
#   scripts/localnet.sh status      each node's pid and latest committed height
#   scripts/localnet.sh logs [I]    follow every node's log (or node I's)
#   scripts/localnet.sh clean       stop and delete the network
#
# Homes live in build/localnet/nodeI; node I listens for p2p on 127.0.0.1:(26656+2I)
# and serves JSON-RPC on 127.0.0.1:(26657+2I).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/localnet
bin=build/ledgerd

height() { # height of the node whose log is $1, from its last "committed block" line
	grep -o 'committed block" height=[0-9]*' "$1" 2>/dev/null | tail -1 | sed 's/.*=//'
}

case "${1:-}" in
start)
	n=${2:-4}
	mkdir -p build
	CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/ledgerd
	[ -f "$dir/testnet.json" ] || "$bin" testnet --validators "$n" --output "$dir" >/dev/null
	for home in "$dir"/node*; do
		if [ -f "$home/pid" ] && kill -0 "$(cat "$home/pid")" 2>/dev/null; then
			echo "$(basename "$home") already running"
			continue
		fi
		nohup "$bin" start --home "$home" >>"$home/node.log" 2>&1 &
		echo $! >"$home/pid"
		echo "started $(basename "$home") (pid $!)"
	done
	;;
stop)
	for home in "$dir"/node*; do
		[ -f "$home/pid" ] || continue
		pid=$(cat "$home/pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
			echo "stopped $(basename "$home")"
		fi
		rm -f "$home/pid"
	done
	;;
status)
	for home in "$dir"/node*; do
		state=stopped
		if [ -f "$home/pid" ] && kill -0 "$(cat "$home/pid")" 2>/dev/null; then state="running (pid $(cat "$home/pid"))"; fi
		printf '%-6s %-24s height %s\n' "$(basename "$home")" "$state" "$(height "$home/node.log")"
	done
	;;
logs)
	if [ -n "${2:-}" ]; then tail -F "$dir/node$2/node.log"; else tail -F "$dir"/node*/node.log; fi
	;;
clean)
	"$0" stop
	rm -rf "$dir"
	;;
*)
	sed -n '2,11p' "$0"
	exit 2
	;;
esac
