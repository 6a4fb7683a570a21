# Configuration of the proxies compared by the benchmarks, shared by
# bench/run and bench/device/run.sh (sourced, bash). Every proxy terminates
# mTLS with the same PKI in front of the same three kg-backend instances.
#
# Caller's variables: P (PKI directory from `ktlsgw pki init --test`, plus
# server-combined.pem = key + certificate), T (scratch directory), BSINK,
# BSRC, BECHO (backend ports) and the associative array FRONT, whose
# "KEY.sink", "KEY.source" and "KEY.echo" entries are the front ports of the
# instance named KEY. Each function writes a configuration on stdout.

declare -A USED=()
port_busy() { timeout 1 bash -c ">/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# Listening ports come from below the kernel's ephemeral range: a port in it
# may still be held by a client connection of an earlier run in TIME_WAIT,
# and bind() then fails with EADDRINUSE (seen on a second run on one machine).
PORT_LO=10000 PORT_HI=32767
read -r _eph _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
	[ "${_eph:-0}" -gt $((PORT_LO + 2000)) ] && PORT_HI=$((_eph - 1))
# a random port that nothing listens on and that is not taken here
# (call it in the current shell, not in $(...), or USED forgets it)
port() { # VAR (locals prefixed: VAR is the caller's, maybe "p")
	local _pp _pi
	for _pi in $(seq 1 50); do
		_pp=$((PORT_LO + RANDOM % (PORT_HI - PORT_LO + 1)))
		[ -z "${USED[$_pp]:-}" ] && ! port_busy $_pp && { USED[$_pp]=1; printf -v "$1" %s "$_pp"; return 0; }
	done
	echo "no free port found" >&2
	return 1
}

peer_backend() { # sink|source|echo -> backend port
	case $1 in sink) echo "$BSINK" ;; source) echo "$BSRC" ;; echo) echo "$BECHO" ;; esac
}

peer_conf_ktlsgw() { # KEY WORKERS [KTLS on|off|auto] [LOG_LEVEL]
	local key=$1 w=$2 ktls=${3:-} ll=${4:-warning} be
	printf '[global]\nworkers = %s\nstate_dir = %s/%s.state\nrevocation = off\nlog_level = %s\nadmin_socket =\n' \
		"$w" "$T" "$key" "$ll"
	for be in sink source echo; do
		printf '[listener %s]\nlisten = 127.0.0.1:%s\ncert = %s/server.pem\nkey = %s/server.key\nclient_ca = %s/client-ca.pem\ntrust = %s/ca.pem\nbackend = 127.0.0.1:%s\nidle_timeout = 1h\n' \
			"$be" "${FRONT[$key.$be]}" "$P" "$P" "$P" "$P" "$(peer_backend $be)"
		[ -n "$ktls" ] && printf 'ktls = %s\n' "$ktls"
	done
}

# NGX_LOAD: the load_module line for a dynamic stream module (or empty);
# NGX_EXTRA: more main-context directives (or empty).
peer_conf_nginx() { # KEY WORKERS
	local key=$1 w=$2 be
	printf '%s\n' "${NGX_LOAD:-}"
	[ -n "${NGX_EXTRA:-}" ] && printf '%s\n' "$NGX_EXTRA"
	printf 'worker_processes %s;\npid %s/%s.pid;\nerror_log %s/%s.err warn;\ndaemon off;\nevents { worker_connections 32768; }\nstream {\n' \
		"$w" "$T" "$key" "$T" "$key"
	for be in sink source echo; do
		printf ' server { listen 127.0.0.1:%s ssl; ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key; ssl_verify_client on; ssl_client_certificate %s/client-ca-chain.pem; ssl_verify_depth 2; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; proxy_half_close on; proxy_pass 127.0.0.1:%s; }\n' \
			"${FRONT[$key.$be]}" "$P" "$P" "$P" "$(peer_backend $be)"
	done
	printf '}\n'
}

peer_conf_haproxy() { # KEY WORKERS
	local key=$1 w=$2 be
	printf 'global\n  nbthread %s\n  maxconn %s\n  ssl-server-verify none\n  tune.ssl.default-dh-param 2048\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 1h\n  timeout server 1h\n' "$w" "${PEER_MAXCONN:-4000}"
	for be in sink source echo; do
		printf 'listen %s\n  bind 127.0.0.1:%s ssl crt %s/server-combined.pem ca-file %s/client-ca-chain.pem verify required no-tls-tickets\n  server b 127.0.0.1:%s\n' \
			"$be" "${FRONT[$key.$be]}" "$P" "$P" "$(peer_backend $be)"
	done
}

# stunnel has no worker count: a thread per connection.
peer_conf_stunnel() { # KEY
	local key=$1 be
	printf 'foreground = yes\npid =\ndebug = 3\noutput = %s/%s.log\n' "$T" "$key"
	for be in sink source echo; do
		printf '[%s]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\ncert = %s/server.pem\nkey = %s/server.key\nCAfile = %s/client-ca-chain.pem\nverifyChain = yes\nrequireCert = yes\noptions = NO_TICKET\n' \
			"$be" "${FRONT[$key.$be]}" "$(peer_backend $be)" "$P" "$P" "$P"
	done
}
