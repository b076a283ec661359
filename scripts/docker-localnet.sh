#!/usr/bin/env bash
# A 4-validator ledgerd network under Docker Compose: one container per node
# on a private bridge network, built FROM scratch around a static binary.
#
#   scripts/docker-localnet.sh up [N]    build, generate N homes (default 4), start
#   scripts/docker-localnet.sh status    each node's height (through its RPC port)
#   scripts/docker-localnet.sh logs      follow the logs
#   scripts/docker-localnet.sh down      stop and remove the containers and network
#
# Homes live in build/docker-localnet/; RPC port of node i is published on
# 127.0.0.1:(26657 + 10*i).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/docker-localnet
project=ledgerd-localnet
compose() { docker compose -p "$project" -f "$dir/compose.yml" "$@" 2>/dev/null || docker-compose -p "$project" -f "$dir/compose.yml" "$@"; }

case "${1:-}" in
up)
	n=${2:-4}
	mkdir -p build
	CGO_ENABLED=0 go build -trimpath -o build/ledgerd ./cmd/ledgerd
	cp build/ledgerd deploy/docker/ledgerd
	docker build -q -t ledgerd:local deploy/docker >/dev/null
	rm -f deploy/docker/ledgerd
	rm -rf "$dir"
	hosts=$(seq -s, -f 'node%g' 0 $((n - 1)))
	build/ledgerd testnet --validators "$n" --output "$dir" --hostnames "$hosts" >/dev/null
	# Containers bind every interface inside their own network namespace;
	# RPC is published to the host on loopback only.
	{
		echo "services:"
		for i in $(seq 0 $((n - 1))); do
			cat <<YML
  node$i:
    image: ledgerd:local
    hostname: node$i
    command: ["start", "--home", "/home/node", "--rpc-addr", "0.0.0.0:26657"]
    volumes: ["./node$i:/home/node"]
    ports: ["127.0.0.1:$((26657 + 10 * i)):26657"]
    networks: [ledgerd]
    stop_grace_period: 20s
YML
		done
		echo "networks:"
		echo "  ledgerd:"
		echo "    driver: bridge"
	} >"$dir/compose.yml"
	compose up -d
	echo "started $n nodes; RPC of node i at 127.0.0.1:$((26657))+10*i"
	;;
status)
	compose ps
	;;
logs)
	compose logs -f
	;;
down)
	compose down -v --remove-orphans
	;;
*)
	sed -n '2,12p' "$0"
	exit 2
	;;
esac
