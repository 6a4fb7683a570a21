/*
 * The configuration keys, one at a time: [global], [listener NAME],
 * [sni LISTENER HOST] and [fleet] into struct kg_config. The syntax is
 * ini.c's; what needs the whole file is config_check.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "config.h"
#include "config_int.h"
#include "ini.h"
#include "kg_revoke.h"
#include "log.h"

static const char *const kg_lkey_names[KG_LK__COUNT] = {
	[KG_LK_SECTION] = "[listener]",
	[KG_LK_LISTEN] = "listen",
	[KG_LK_CERT] = "cert",
	[KG_LK_KEY] = "key",
	[KG_LK_CLIENT_CA] = "client_ca",
	[KG_LK_TRUST] = "trust",
	[KG_LK_VERIFY_DEPTH] = "verify_depth",
	[KG_LK_BACKEND] = "backend",
	[KG_LK_TLS_MIN] = "tls_min",
	[KG_LK_TLS_MAX] = "tls_max",
	[KG_LK_CIPHERS] = "ciphers",
	[KG_LK_CIPHERSUITES] = "ciphersuites",
	[KG_LK_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[KG_LK_CONNECT_TIMEOUT] = "connect_timeout",
	[KG_LK_IDLE_TIMEOUT] = "idle_timeout",
	[KG_LK_BACKLOG] = "backlog",
	[KG_LK_MAX_CONNECTIONS] = "max_connections",
	[KG_LK_KTLS] = "ktls",
	[KG_LK_CRL] = "crl",
	[KG_LK_CRL_STALE] = "crl_stale",
	[KG_LK_MAX_LIFETIME] = "max_lifetime",
	[KG_LK_PROXY_PROTOCOL] = "proxy_protocol",
	[KG_LK_PROXY_PROTOCOL_CERT] = "proxy_protocol_cert",
	[KG_LK_HANDSHAKE_RATE] = "handshake_rate",
	[KG_LK_TLS] = "tls",
	[KG_LK_CLIENT_AUTH] = "client_auth",
	[KG_LK_BACKEND_TLS] = "backend_tls",
	[KG_LK_BACKEND_CA] = "backend_ca",
	[KG_LK_BACKEND_NAME] = "backend_name",
	[KG_LK_BACKEND_CERT] = "backend_cert",
	[KG_LK_BACKEND_KEY] = "backend_key",
	[KG_LK_BACKEND_TLS_MIN] = "backend_tls_min",
	[KG_LK_BACKEND_TLS_MAX] = "backend_tls_max",
	[KG_LK_BACKEND_CIPHERS] = "backend_ciphers",
	[KG_LK_BACKEND_CIPHERSUITES] = "backend_ciphersuites",
};

const char *kg_lkey_name(enum kg_lkey k)
{
	return k < KG_LK__COUNT && kg_lkey_names[k] ? kg_lkey_names[k] : "?";
}

static int kg_start_section(struct kg_parse *p, const char *section);

int kg_cfg_fail(struct kg_parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->rc)
		return 0;	/* keep the first error: it is the one to fix */
	n = snprintf(p->err, p->errlen, "%s:%u: ", p->path, p->lineno);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	p->rc = -EINVAL;
	return 0;
}

static void kg_listener_defaults(struct kg_listener_conf *l)
{
	memset(l, 0, sizeof(*l));
	l->verify_depth = 4;
	l->tls_min = TLS1_2_VERSION;
	l->tls_max = TLS1_3_VERSION;
	l->handshake_timeout_ms = 10000;
	l->connect_timeout_ms = 5000;
	l->idle_timeout_ms = 300000;
	l->backlog = 1024;
	l->ktls = KG_KTLS_AUTO;
	l->origin.tls_min = TLS1_2_VERSION;
	l->origin.tls_max = TLS1_3_VERSION;
}

static int kg_set_path(struct kg_parse *p, char **dst, const char *key, const char *value)
{
	if (!*value)
		return kg_cfg_fail(p, "%s is empty; give the path of a PEM file", key);
	/* AT_EACCESS: after dropping to `user`, a reload reads keys with the
	 * effective credentials (CAP_DAC_READ_SEARCH), as open(2) will. */
	if (faccessat(AT_FDCWD, value, R_OK, AT_EACCESS))
		return kg_cfg_fail(p, "%s = %s: %s; check the path and its permissions",
				   key, value, strerror(errno));
	free(*dst);
	*dst = strdup(value);
	if (!*dst)
		p->rc = -ENOMEM;
	return 1;
}

/* tls_min, tls_max and their backend_ twins. */
static int kg_set_version(struct kg_parse *p, int *dst, const char *key, const char *value)
{
	int v = kg_tls_version_parse(value);

	if (!v)
		return kg_cfg_fail(p, "%s = %s: must be 1.2 or 1.3", key, value);
	*dst = v;
	return 1;
}

/* An OpenSSL list (ciphers, ciphersuites and their backend_ twins). */
static int kg_set_list(struct kg_parse *p, char **dst, const char *key, const char *value)
{
	if (!*value)
		return kg_cfg_fail(p, "%s is empty; remove the line to use the default", key);
	free(*dst);
	*dst = strdup(value);
	if (!*dst)
		p->rc = -ENOMEM;
	return 1;
}

static int kg_listener_key(struct kg_parse *p, const char *name, const char *value)
{
	struct kg_listener_conf *l = p->cur;
	char aerr[256];
	unsigned long n;
	int k;

	for (k = KG_LK_LISTEN; k < KG_LK__COUNT; k++)
		if (!strcmp(name, kg_lkey_names[k]))
			break;
	if (k == KG_LK__COUNT)
		return kg_cfg_fail(p, "unknown key '%s' in [listener %s]; valid keys: listen, cert, key, "
				   "client_ca, trust, verify_depth, backend, tls_min, tls_max, ciphers, "
				   "ciphersuites, handshake_timeout, connect_timeout, idle_timeout, "
				   "backlog, max_connections, max_lifetime, ktls, crl, crl_stale, proxy_protocol, "
				   "proxy_protocol_cert, handshake_rate, tls, client_auth, backend_tls, "
				   "backend_ca, backend_name, backend_cert, backend_key, backend_tls_min, "
				   "backend_tls_max, backend_ciphers, backend_ciphersuites", name, l->name);
	if (p->cur_sni && k != KG_LK_CERT && k != KG_LK_KEY && k != KG_LK_CLIENT_CA &&
	    k != KG_LK_TRUST && k != KG_LK_CRL && k != KG_LK_CRL_STALE && k != KG_LK_VERIFY_DEPTH &&
	    k != KG_LK_CLIENT_AUTH)
		return kg_cfg_fail(p, "'%s' cannot be set per server name; [sni %s %s] takes cert, "
				   "key, client_ca, trust, crl, crl_stale, verify_depth and client_auth; "
				   "set '%s' in [listener %s]", name, l->parent, l->server_name, name,
				   l->parent);
	if (l->line[k])
		return kg_cfg_fail(p, "'%s' is set twice in [listener %s] (first at line %u); keep one",
				   name, l->name, l->line[k]);
	l->line[k] = p->lineno;

	switch ((enum kg_lkey)k) {
	case KG_LK_LISTEN:
		if (kg_addr_parse(value, true, &l->listen, aerr, sizeof(aerr)))
			return kg_cfg_fail(p, "listen: %s", aerr);
		return 1;
	case KG_LK_BACKEND:
		if (kg_addr_parse(value, false, &l->backend, aerr, sizeof(aerr)))
			return kg_cfg_fail(p, "backend: %s", aerr);
		return 1;
	case KG_LK_CERT:
		return kg_set_path(p, &l->cert, name, value);
	case KG_LK_KEY:
		return kg_set_path(p, &l->key, name, value);
	case KG_LK_CLIENT_CA:
		return kg_set_path(p, &l->client_ca, name, value);
	case KG_LK_TRUST:
		return kg_set_path(p, &l->trust, name, value);
	case KG_LK_CRL:
		return kg_set_path(p, &l->crl, name, value);
	case KG_LK_HANDSHAKE_RATE:
		if (kg_uint_parse(value, 10000000, &n))
			return kg_cfg_fail(p, "handshake_rate = %s: new connections per second (0 = "
					   "unlimited)", value);
		l->handshake_rate = (unsigned)n;
		return 1;
	case KG_LK_PROXY_PROTOCOL:
		if (strcmp(value, "v2") && strcmp(value, "off"))
			return kg_cfg_fail(p, "proxy_protocol = %s: must be v2 or off", value);
		l->proxy_v2 = !strcmp(value, "v2");
		return 1;
	case KG_LK_PROXY_PROTOCOL_CERT:
		if (strcmp(value, "yes") && strcmp(value, "no"))
			return kg_cfg_fail(p, "proxy_protocol_cert = %s: must be yes or no", value);
		l->proxy_cert = !strcmp(value, "yes");
		return 1;
	case KG_LK_MAX_LIFETIME: {
		unsigned ms;

		if (kg_duration_parse(value, &ms))
			return kg_cfg_fail(p, "max_lifetime = %s: give a duration such as 1h (0 = unlimited)",
					   value);
		l->max_lifetime_ms = ms;
		return 1;
	}
	case KG_LK_CRL_STALE:
		if (strcmp(value, "reject") && strcmp(value, "warn"))
			return kg_cfg_fail(p, "crl_stale = %s: must be reject (refuse clients while the "
					   "CRL is past its nextUpdate) or warn", value);
		l->crl_stale_ok = !strcmp(value, "warn");
		return 1;
	case KG_LK_VERIFY_DEPTH:
		if (kg_uint_parse(value, 16, &n) || n < 1)
			return kg_cfg_fail(p, "verify_depth = %s: must be a number from 1 to 16 "
					   "(intermediates allowed above the client certificate)", value);
		l->verify_depth = (int)n;
		return 1;
	case KG_LK_TLS_MIN:
		return kg_set_version(p, &l->tls_min, name, value);
	case KG_LK_TLS_MAX:
		return kg_set_version(p, &l->tls_max, name, value);
	case KG_LK_CIPHERS:
		return kg_set_list(p, &l->ciphers, name, value);
	case KG_LK_CIPHERSUITES:
		return kg_set_list(p, &l->ciphersuites, name, value);
	case KG_LK_HANDSHAKE_TIMEOUT:
	case KG_LK_CONNECT_TIMEOUT:
	case KG_LK_IDLE_TIMEOUT: {
		unsigned ms;

		if (kg_duration_parse(value, &ms) || ms == 0)
			return kg_cfg_fail(p, "%s = %s: give a positive duration such as 10s, 500ms or 5m",
					   name, value);
		if (k == KG_LK_HANDSHAKE_TIMEOUT)
			l->handshake_timeout_ms = ms;
		else if (k == KG_LK_CONNECT_TIMEOUT)
			l->connect_timeout_ms = ms;
		else
			l->idle_timeout_ms = ms;
		return 1;
	}
	case KG_LK_BACKLOG:
		if (kg_uint_parse(value, 65535, &n) || n < 1)
			return kg_cfg_fail(p, "backlog = %s: must be a number from 1 to 65535", value);
		l->backlog = (int)n;
		return 1;
	case KG_LK_MAX_CONNECTIONS:
		if (kg_uint_parse(value, 10000000, &n))
			return kg_cfg_fail(p, "max_connections = %s: must be a number (0 = unlimited)", value);
		l->max_connections = (unsigned)n;
		return 1;
	case KG_LK_KTLS:
		if (!strcmp(value, "auto"))
			l->ktls = KG_KTLS_AUTO;
		else if (!strcmp(value, "on"))
			l->ktls = KG_KTLS_ON;
		else if (!strcmp(value, "off"))
			l->ktls = KG_KTLS_OFF;
		else
			return kg_cfg_fail(p, "ktls = %s: must be auto, on or off", value);
		return 1;
	case KG_LK_TLS:
		if (strcmp(value, "on") && strcmp(value, "off"))
			return kg_cfg_fail(p, "tls = %s: must be on (clients speak TLS to us) or off "
					   "(client mode: plain TCP in, TLS to the backend)", value);
		l->tls_off = !strcmp(value, "off");
		return 1;
	case KG_LK_CLIENT_AUTH:
		if (strcmp(value, "required") && strcmp(value, "optional"))
			return kg_cfg_fail(p, "client_auth = %s: must be required or optional (a client "
					   "without a certificate is let through; one that sends a "
					   "certificate is still verified)", value);
		l->client_auth_optional = !strcmp(value, "optional");
		return 1;
	case KG_LK_BACKEND_TLS:
		if (strcmp(value, "on") && strcmp(value, "off"))
			return kg_cfg_fail(p, "backend_tls = %s: must be on or off", value);
		l->origin.on = !strcmp(value, "on");
		return 1;
	case KG_LK_BACKEND_CA:
		return kg_set_path(p, &l->origin.ca, name, value);
	case KG_LK_BACKEND_CERT:
		return kg_set_path(p, &l->origin.cert, name, value);
	case KG_LK_BACKEND_KEY:
		return kg_set_path(p, &l->origin.key, name, value);
	case KG_LK_BACKEND_NAME:
		if (!kg_server_name_valid(value) || value[0] == '*')
			return kg_cfg_fail(p, "backend_name = %s: not a DNS name; give the name the "
					   "origin's certificate carries, e.g. origin.example.com", value);
		snprintf(l->origin.name, sizeof(l->origin.name), "%s", value);
		return 1;
	case KG_LK_BACKEND_TLS_MIN:
		return kg_set_version(p, &l->origin.tls_min, name, value);
	case KG_LK_BACKEND_TLS_MAX:
		return kg_set_version(p, &l->origin.tls_max, name, value);
	case KG_LK_BACKEND_CIPHERS:
		return kg_set_list(p, &l->origin.ciphers, name, value);
	case KG_LK_BACKEND_CIPHERSUITES:
		return kg_set_list(p, &l->origin.ciphersuites, name, value);
	case KG_LK_SECTION:
	case KG_LK__COUNT:
		break;
	}
	return 1;
}

static int kg_global_key(struct kg_parse *p, const char *name, const char *value)
{
	struct kg_config *c = p->cfg;
	unsigned long n;

	if (!strcmp(name, "workers")) {
		if (!strcmp(value, "auto")) {
			c->workers = 0;
			return 1;
		}
		if (kg_uint_parse(value, KG_WORKERS_MAX, &n))
			return kg_cfg_fail(p, "workers = %s: must be a number from 1 to 1024, or auto "
					   "(one per online CPU)", value);
		c->workers = (unsigned)n;
	} else if (!strcmp(name, "max_connections")) {
		if (kg_uint_parse(value, 10000000, &n))
			return kg_cfg_fail(p, "max_connections = %s: must be a number (0 = unlimited)", value);
		c->max_connections = (unsigned)n;
	} else if (!strcmp(name, "log_level")) {
		static const char *const lv[] = { "error", "warning", "info", "debug" };
		unsigned i;

		for (i = 0; i < 4; i++)
			if (!strcmp(value, lv[i]))
				break;
		if (i == 4)
			return kg_cfg_fail(p, "log_level = %s: must be error, warning, info or debug", value);
		c->log_level = (int)i;
	} else if (!strcmp(name, "state_dir") || !strcmp(name, "bpf_pin_root")) {
		char *dst = name[0] == 's' ? c->state_dir : c->pin_root;

		if (value[0] != '/' || strlen(value) >= sizeof(c->state_dir) - 16)
			return kg_cfg_fail(p, "%s = %s: give an absolute directory path", name, value);
		snprintf(dst, sizeof(c->state_dir), "%s", value);
	} else if (!strcmp(name, "admin_socket")) {
		if (strlen(value) >= sizeof(c->admin_socket))
			return kg_cfg_fail(p, "admin_socket = %s: path longer than %zu characters", value,
					   sizeof(c->admin_socket) - 1);
		snprintf(c->admin_socket, sizeof(c->admin_socket), "%s", value);	/* "" disables */
	} else if (!strcmp(name, "metrics")) {
		char aerr[256];

		if (kg_addr_parse(value, true, &c->metrics, aerr, sizeof(aerr)))
			return kg_cfg_fail(p, "metrics: %s", aerr);
	} else if (!strcmp(name, "revocation")) {
		if (!strcmp(value, "required"))
			c->revocation = KG_REV_REQUIRED;
		else if (!strcmp(value, "best-effort"))
			c->revocation = KG_REV_BEST_EFFORT;
		else if (!strcmp(value, "off"))
			c->revocation = KG_REV_OFF;
		else
			return kg_cfg_fail(p, "revocation = %s: must be required, best-effort or off", value);
	} else if (!strcmp(name, "revocation_scan_interval") || !strcmp(name, "drain_timeout")) {
		unsigned ms;

		if (kg_duration_parse(value, &ms) || ms == 0)
			return kg_cfg_fail(p, "%s = %s: give a positive duration such as 250ms or 10s",
					   name, value);
		if (name[0] == 'r')
			c->scan_interval_ms = ms;
		else
			c->drain_timeout_ms = ms;
	} else if (!strcmp(name, "user")) {
		size_t i;

		if (!*value || strlen(value) >= sizeof(c->user))
			return kg_cfg_fail(p, "user = %s: give an account name (up to %zu characters)",
					   value, sizeof(c->user) - 1);
		for (i = 0; value[i]; i++)
			if (!isalnum((unsigned char)value[i]) && !strchr("-_.", value[i]))
				return kg_cfg_fail(p, "user = %s: not an account name", value);
		if (!getpwnam(value))
			return kg_cfg_fail(p, "user = %s: no such user; create it (useradd --system "
					   "--no-create-home --shell /usr/sbin/nologin %s) or remove the "
					   "line", value, value);
		snprintf(c->user, sizeof(c->user), "%s", value);
		c->user_line = p->lineno;
	} else if (!strcmp(name, "log_format")) {
		if (strcmp(value, "text") && strcmp(value, "json"))
			return kg_cfg_fail(p, "log_format = %s: must be text or json", value);
		c->log_json = !strcmp(value, "json");
	} else {
		static const char *const known[] = KG_GLOBAL_KEYS;
		char list[512];
		size_t o = 0, i;

		for (i = 0; known[i] && o < sizeof(list); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", known[i]);
		return kg_cfg_fail(p, "unknown key '%s' in [global]; valid keys: %s", name, list);
	}
	return 1;
}

/* [sni LISTENER HOST]: a certificate group of LISTENER chosen by SNI. */
static int kg_start_sni(struct kg_parse *p, const char *args)
{
	char lname[KG_NAME_MAX] = "", host[KG_SERVER_NAME_MAX + 3] = "", extra[2] = "";
	struct kg_listener_conf *ns;
	size_t i;

	if (sscanf(args, " %63s %255s %1s", lname, host, extra) != 2)
		return kg_cfg_fail(p, "[sni %s]: give the listener and the server name, e.g. "
				   "[sni edge api.example.com]", args);
	if (!kg_server_name_valid(host))
		return kg_cfg_fail(p, "[sni %s %s]: '%s' is not a DNS name; give e.g. "
				   "api.example.com or *.example.com", lname, host, host);
	for (i = 0; host[i]; i++)
		host[i] = (char)tolower((unsigned char)host[i]);
	for (i = 0; i < p->n_sni; i++)
		if (!strcmp(p->sni[i].parent, lname) && !strcmp(p->sni[i].server_name, host))
			return kg_cfg_fail(p, "[sni %s %s] is defined twice (first at line %u); keep one",
					   lname, host, p->sni[i].line[KG_LK_SECTION]);
	ns = realloc(p->sni, (p->n_sni + 1) * sizeof(*ns));
	if (!ns) {
		p->rc = -ENOMEM;
		return 0;
	}
	p->sni = ns;
	p->cur = &ns[p->n_sni++];
	p->cur_sni = true;
	kg_listener_defaults(p->cur);
	snprintf(p->cur->name, sizeof(p->cur->name), "%s", lname);
	snprintf(p->cur->parent, sizeof(p->cur->parent), "%s", lname);
	snprintf(p->cur->server_name, sizeof(p->cur->server_name), "%s", host);
	p->cur->line[KG_LK_SECTION] = p->lineno;
	return 1;
}

static int kg_start_section(struct kg_parse *p, const char *section)
{
	struct kg_listener_conf *nl;
	const char *name;
	size_t i;

	p->cur = NULL;
	p->in_global = false;
	p->in_fleet = false;
	p->cur_sni = false;
	if (p->rc)
		return 0;
	if (!strcmp(section, "fleet")) {
		if (p->cfg->fleet.enabled)
			return kg_cfg_fail(p, "[fleet] is defined twice (first at line %u); keep one",
					   p->cfg->fleet.line);
		p->in_fleet = true;
		p->cfg->fleet.enabled = true;
		p->cfg->fleet.line = p->lineno;
		return 1;
	}
	if (!strcmp(section, "global")) {
		p->in_global = true;
		return 1;
	}
	if (!strncmp(section, "sni ", 4))
		return kg_start_sni(p, section + 4);
	if (strncmp(section, "listener", 8) || (section[8] && section[8] != ' '))
		return kg_cfg_fail(p, "unknown section [%s]; use [global], [listener NAME], [fleet] or "
				   "[sni LISTENER HOST]", section);
	name = section + 8;
	while (*name == ' ')
		name++;
	if (!*name)
		return kg_cfg_fail(p, "[listener] needs a name, e.g. [listener edge]");
	if (strlen(name) >= KG_NAME_MAX)
		return kg_cfg_fail(p, "listener name '%s' is longer than %d characters", name,
				   KG_NAME_MAX - 1);
	for (i = 0; name[i]; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("-_.", name[i]))
			return kg_cfg_fail(p, "listener name '%s': use letters, digits, '-', '_' or '.'",
					   name);
	for (i = 0; i < p->cfg->n_listeners; i++)
		if (!strcmp(p->cfg->listeners[i].name, name))
			return kg_cfg_fail(p, "[listener %s] is defined twice (first at line %u); "
					   "merge them or rename one", name,
					   p->cfg->listeners[i].line[KG_LK_SECTION]);
	nl = realloc(p->cfg->listeners, (p->cfg->n_listeners + 1) * sizeof(*nl));
	if (!nl) {
		p->rc = -ENOMEM;
		return 0;
	}
	p->cfg->listeners = nl;
	p->cur = &nl[p->cfg->n_listeners++];
	kg_listener_defaults(p->cur);
	snprintf(p->cur->name, sizeof(p->cur->name), "%.*s", KG_NAME_MAX - 1, name);
	p->cur->line[KG_LK_SECTION] = p->lineno;
	return 1;
}

static int kg_cfg_key(struct kg_parse *p, const char *name, const char *value)
{
	if (p->rc)
		return 0;
	if (p->in_fleet) {
		char ferr[512];

		if (kg_fleet_conf_key(&p->cfg->fleet, name, value, ferr, sizeof(ferr)))
			return kg_cfg_fail(p, "%s", ferr);
		return 1;
	}
	if (!p->in_global && !p->cur)
		return kg_cfg_fail(p, "'%s' is outside any section; put it under [global] or "
				   "[listener NAME]", name);
	if (p->in_global)
		return kg_global_key(p, name, value);
	return kg_listener_key(p, name, value);
}

/* One item of the file, from ini.c. */
static bool kg_cfg_item(void *arg, enum kg_ini_item what, char *name, char *value)
{
	struct kg_parse *p = arg;

	if (what == KG_INI_ERROR)
		kg_cfg_fail(p, "%s", name);
	else if (what == KG_INI_SECTION)
		kg_start_section(p, name);
	else
		kg_cfg_key(p, name, value);
	return !p->rc;
}

static void kg_listener_conf_release(struct kg_listener_conf *l)
{
	size_t i;

	for (i = 0; i < l->n_sni; i++)
		kg_listener_conf_release(&l->sni[i]);
	free(l->sni);
	free(l->cert);
	free(l->key);
	free(l->client_ca);
	free(l->trust);
	free(l->crl);
	free(l->ciphers);
	free(l->ciphersuites);
	free(l->origin.ca);
	free(l->origin.cert);
	free(l->origin.key);
	free(l->origin.ciphers);
	free(l->origin.ciphersuites);
}

void kg_config_free(struct kg_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_listeners; i++)
		kg_listener_conf_release(&cfg->listeners[i]);
	free(cfg->listeners);
	free(cfg->path);
	free(cfg);
}

static void kg_sni_free(struct kg_parse *p)
{
	size_t i;

	for (i = 0; i < p->n_sni; i++)
		kg_listener_conf_release(&p->sni[i]);
	free(p->sni);
	p->sni = NULL;
	p->n_sni = 0;
}

int kg_config_load(const char *path, struct kg_config **out, char *err, size_t errlen)
{
	struct kg_parse p = { .path = path, .err = err, .errlen = errlen };
	int rc;

	*out = NULL;
	err[0] = '\0';
	p.cfg = calloc(1, sizeof(*p.cfg));
	if (!p.cfg)
		return -ENOMEM;
	p.cfg->log_level = KG_LOG_INFO;
	snprintf(p.cfg->state_dir, sizeof(p.cfg->state_dir), "%s", KG_STATE_DIR_DEFAULT);
	snprintf(p.cfg->pin_root, sizeof(p.cfg->pin_root), "%s", KG_PIN_ROOT_DEFAULT);
	p.cfg->revocation = KG_REV_REQUIRED;
	p.cfg->scan_interval_ms = 250;
	p.cfg->drain_timeout_ms = 10000;
	snprintf(p.cfg->admin_socket, sizeof(p.cfg->admin_socket), "/run/ktlsgw/admin.sock");
	p.cfg->path = strdup(path);
	p.f = fopen(path, "r");
	if (!p.f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s; pass the configuration file with -c FILE", path,
			 strerror(errno));
		goto fail;
	}
	rc = kg_ini_read(p.f, &p.lineno, kg_cfg_item, &p);
	fclose(p.f);
	if (p.rc) {
		rc = p.rc;
		goto fail;
	}
	if (rc) {
		snprintf(err, errlen, "%s: %s; check the file", path, strerror(-rc));
		goto fail;
	}
	if (!p.cfg->n_listeners) {
		p.lineno = p.lineno ? p.lineno : 1;
		kg_cfg_fail(&p, "no [listener NAME] section; nothing to serve");
		rc = -EINVAL;
		goto fail;
	}
	kg_cfg_check(&p);
	if (p.rc) {
		rc = p.rc;
		goto fail;
	}
	kg_sni_free(&p);
	*out = p.cfg;
	return 0;
fail:
	kg_sni_free(&p);
	kg_config_free(p.cfg);
	return rc;
}
