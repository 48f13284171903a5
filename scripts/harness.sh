# Sourced by scripts/load.sh and scripts/campaign.sh: what the harness
# (cmd/scrmgw-load) needs before it starts its own PostgreSQL and Redis.

. scripts/lib.sh

# harness_setup [PACKAGE...] installs redis-server, postgresql and the
# given extra Debian packages (named by their command) with apt-get when
# they are missing, and creates the postgres user the harness runs
# PostgreSQL as when running as root (PostgreSQL refuses root).
harness_setup() {
	local pkgs=() p
	for p in "$@"; do
		command -v "$p" >/dev/null || pkgs+=("$p")
	done
	command -v redis-server >/dev/null || pkgs+=(redis-server)
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || pkgs+=(postgresql)
	if ((${#pkgs[@]})); then
		apt_install "${pkgs[@]}"
	fi
	pg_user
	log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
}
