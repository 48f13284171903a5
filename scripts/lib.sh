# Sourced by the scripts that start a throwaway PostgreSQL
# (scripts/test.sh, scripts/harness.sh, cmd/scrmgw-bench/postgis.sh):
# their log line, installing what is missing, a free port, and
# PostgreSQL's commands run as the postgres user when running as root
# (PostgreSQL refuses root).

log() { printf '== %s\n' "$*" >&2; }

# apt_install PACKAGE... installs Debian packages with apt-get (through
# sudo when not root), without their recommendations.
apt_install() {
	log "installing $*"
	local sudo=""
	[[ $(id -u) -ne 0 ]] && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# free_port prints a TCP port on 127.0.0.1 nothing listens on.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# pg_user creates the postgres user as_pg runs PostgreSQL as, when
# running as root and it is missing.
pg_user() {
	[[ $(id -u) -ne 0 ]] || id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
}

# as_pg runs a command as the postgres user when running as root (see
# pg_user), as it is otherwise.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}
