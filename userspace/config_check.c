/*
 * The configuration checks that need the whole file, run once it is read:
 * required keys, keys that contradict each other, the origin leg's name,
 * listeners on one address, [sni] groups completed from their listener,
 * [fleet]. Owns no parsing of single keys (config.c) and no syntax (ini.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>

#include "config.h"
#include "config_int.h"
#include "fleet.h"


static int kg_strdup_into(struct kg_parse *p, char **dst, const char *src)
{
	if (*dst || !src)
		return 1;
	*dst = strdup(src);
	if (!*dst)
		p->rc = -ENOMEM;
	return *dst != NULL;
}

/* Complete sni group @g from its listener @l: the TLS settings are the
 * listener's; cert, key and client_ca are the group's own; trust, crl,
 * crl_stale and verify_depth are inherited unless the group sets them. */
static int kg_sni_attach(struct kg_parse *p, struct kg_listener_conf *g, struct kg_listener_conf *l)
{
	static const enum kg_lkey required[] = { KG_LK_CERT, KG_LK_KEY, KG_LK_CLIENT_CA };
	struct kg_listener_conf *arr;
	size_t i;

	p->lineno = g->line[KG_LK_SECTION];
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!g->line[required[i]])
			return kg_cfg_fail(p, "[sni %s %s] has no '%s'; a server name group needs its "
					   "own cert, key and client_ca", g->parent, g->server_name,
					   kg_lkey_name(required[i]));
	if (!g->line[KG_LK_TRUST] && !kg_strdup_into(p, &g->trust, l->trust))
		return 0;
	if (!g->line[KG_LK_CRL] && !kg_strdup_into(p, &g->crl, l->crl))
		return 0;
	if (!g->line[KG_LK_CRL_STALE])
		g->crl_stale_ok = l->crl_stale_ok;
	if (!g->line[KG_LK_VERIFY_DEPTH])
		g->verify_depth = l->verify_depth;
	if (!g->line[KG_LK_CLIENT_AUTH])
		g->client_auth_optional = l->client_auth_optional;
	if (!kg_strdup_into(p, &g->ciphers, l->ciphers) ||
	    !kg_strdup_into(p, &g->ciphersuites, l->ciphersuites))
		return 0;
	g->tls_min = l->tls_min;
	g->tls_max = l->tls_max;
	for (i = 0; i < KG_LK__COUNT; i++)
		if (!g->line[i])
			g->line[i] = l->line[i];
	g->listen = l->listen;
	g->backend = l->backend;
	arr = realloc(l->sni, (l->n_sni + 1) * sizeof(*arr));
	if (!arr) {
		p->rc = -ENOMEM;
		return 0;
	}
	l->sni = arr;
	arr[l->n_sni++] = *g;
	memset(g, 0, sizeof(*g));	/* ownership moved */
	return 1;
}

/* The origin leg's settings: consistent, and the name to verify resolved. */
static int kg_origin_check(struct kg_parse *p, struct kg_listener_conf *l)
{
	static const enum kg_lkey needs_tls[] = {
		KG_LK_BACKEND_CA, KG_LK_BACKEND_NAME, KG_LK_BACKEND_CERT, KG_LK_BACKEND_KEY,
		KG_LK_BACKEND_TLS_MIN, KG_LK_BACKEND_TLS_MAX, KG_LK_BACKEND_CIPHERS,
		KG_LK_BACKEND_CIPHERSUITES,
	};
	struct kg_origin_conf *o = &l->origin;
	char host[256];
	const char *t = l->backend.text, *end;
	size_t i, hl;
	unsigned char bin[16];

	if (!o->on) {
		for (i = 0; i < sizeof(needs_tls) / sizeof(needs_tls[0]); i++)
			if (l->line[needs_tls[i]]) {
				p->lineno = l->line[needs_tls[i]];
				return kg_cfg_fail(p, "'%s' has no effect while backend_tls is off; add "
						   "backend_tls = on to [listener %s] or remove the line",
						   kg_lkey_name(needs_tls[i]), l->name);
			}
		return 1;
	}
	if (!o->cert != !o->key) {
		p->lineno = l->line[o->cert ? KG_LK_BACKEND_CERT : KG_LK_BACKEND_KEY];
		return kg_cfg_fail(p, "[listener %s] has %s but no %s; origin mTLS needs both (or "
				   "neither)", l->name, o->cert ? "backend_cert" : "backend_key",
				   o->cert ? "backend_key" : "backend_cert");
	}
	if (o->tls_min > o->tls_max) {
		p->lineno = l->line[KG_LK_BACKEND_TLS_MIN] ? l->line[KG_LK_BACKEND_TLS_MIN] :
			    l->line[KG_LK_BACKEND_TLS_MAX];
		return kg_cfg_fail(p, "backend_tls_min (%s) is above backend_tls_max (%s)",
				   o->tls_min == TLS1_3_VERSION ? "1.3" : "1.2",
				   o->tls_max == TLS1_3_VERSION ? "1.3" : "1.2");
	}
	if (o->name[0])
		return 1;
	/* No backend_name: the host part of backend, as written. */
	if (*t == '[') {
		end = strchr(t, ']');
		t++;
	} else {
		end = strrchr(t, ':');
	}
	hl = end ? (size_t)(end - t) : 0;
	if (!hl || hl >= sizeof(host)) {
		p->lineno = l->line[KG_LK_BACKEND_TLS];
		return kg_cfg_fail(p, "backend = %s has no host to check the origin's certificate "
				   "against; add backend_name = NAME", l->backend.text);
	}
	memcpy(host, t, hl);
	host[hl] = '\0';
	/* an address: check it against the certificate's IP names, send no SNI */
	if (inet_pton(AF_INET, host, bin) == 1)
		return inet_ntop(AF_INET, bin, o->ip, sizeof(o->ip)) ? 1 : 0;
	if (inet_pton(AF_INET6, host, bin) == 1)
		return inet_ntop(AF_INET6, bin, o->ip, sizeof(o->ip)) ? 1 : 0;
	if (!kg_server_name_valid(host) || host[0] == '*') {
		p->lineno = l->line[KG_LK_BACKEND];
		return kg_cfg_fail(p, "backend = %s: '%s' cannot be checked against the origin's "
				   "certificate; add backend_name = NAME", l->backend.text, host);
	}
	snprintf(o->name, sizeof(o->name), "%s", host);
	return 1;
}

static int kg_listener_check(struct kg_parse *p, struct kg_listener_conf *l)
{
	static const enum kg_lkey required[] = {
		KG_LK_LISTEN, KG_LK_CERT, KG_LK_KEY, KG_LK_CLIENT_CA, KG_LK_BACKEND,
	};
	/* what only a TLS listener uses */
	static const enum kg_lkey tls_only[] = {
		KG_LK_CERT, KG_LK_KEY, KG_LK_CLIENT_CA, KG_LK_TRUST, KG_LK_CRL, KG_LK_CRL_STALE,
		KG_LK_VERIFY_DEPTH, KG_LK_TLS_MIN, KG_LK_TLS_MAX, KG_LK_CIPHERS, KG_LK_CIPHERSUITES,
		KG_LK_CLIENT_AUTH, KG_LK_PROXY_PROTOCOL_CERT,
	};
	size_t i;

	p->lineno = l->line[KG_LK_SECTION];
	if (l->tls_off) {
		for (i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++)
			if (l->line[tls_only[i]]) {
				p->lineno = l->line[tls_only[i]];
				return kg_cfg_fail(p, "'%s' has no effect with tls = off (plain TCP in); "
						   "remove it from [listener %s]",
						   kg_lkey_name(tls_only[i]), l->name);
			}
		if (!l->origin.on) {
			p->lineno = l->line[KG_LK_TLS];
			return kg_cfg_fail(p, "tls = off (client mode) is for speaking TLS to the "
					   "backend: add backend_tls = on (and backend_cert, backend_key "
					   "for mTLS) to [listener %s]", l->name);
		}
	}
	for (i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!l->line[required[i]] && !(l->tls_off && required[i] != KG_LK_LISTEN &&
						required[i] != KG_LK_BACKEND))
			return kg_cfg_fail(p, "[listener %s] has no '%s'; every listener needs listen, "
					   "cert, key, client_ca and backend (tls = off: listen and "
					   "backend)", l->name, kg_lkey_name(required[i]));
	if (l->tls_min > l->tls_max) {
		p->lineno = l->line[KG_LK_TLS_MIN];
		return kg_cfg_fail(p, "tls_min (%s) is above tls_max (%s)",
				   l->tls_min == TLS1_3_VERSION ? "1.3" : "1.2",
				   l->tls_max == TLS1_3_VERSION ? "1.3" : "1.2");
	}
	return kg_origin_check(p, l);
}

/* Everything that needs the whole file: each listener complete and
 * consistent, no two on one address, each [sni] group attached to its
 * listener, [fleet] complete. The first problem is left in @p. */
void kg_cfg_check(struct kg_parse *p)
{
	size_t i, j;

	for (i = 0; i < p->cfg->n_listeners; i++) {
		struct kg_listener_conf *l = &p->cfg->listeners[i];

		if (!kg_listener_check(p, l))
			break;
		for (j = 0; j < i && !p->rc; j++) {
			struct kg_listener_conf *o = &p->cfg->listeners[j];

			if (o->listen.len == l->listen.len &&
			    !memcmp(&o->listen.ss, &l->listen.ss, l->listen.len) &&
			    ((struct sockaddr_in *)&l->listen.ss)->sin_port != 0) {
				p->lineno = l->line[KG_LK_LISTEN];
				kg_cfg_fail(p, "[listener %s] listens on %s like [listener %s]; "
					    "give each its own address", l->name, l->listen.text, o->name);
			}
		}
	}
	for (i = 0; i < p->n_sni && !p->rc; i++) {
		struct kg_listener_conf *g = &p->sni[i], *l = NULL;

		for (j = 0; j < p->cfg->n_listeners; j++)
			if (!strcmp(p->cfg->listeners[j].name, g->parent))
				l = &p->cfg->listeners[j];
		if (!l) {
			p->lineno = g->line[KG_LK_SECTION];
			kg_cfg_fail(p, "[sni %s %s]: there is no [listener %s]; define it or fix the "
				    "name", g->parent, g->server_name, g->parent);
			break;
		}
		if (l->tls_off) {
			p->lineno = g->line[KG_LK_SECTION];
			kg_cfg_fail(p, "[sni %s %s]: [listener %s] has tls = off, so there is no "
				    "server name to choose by; remove the group or the tls line",
				    g->parent, g->server_name, g->parent);
			break;
		}
		kg_sni_attach(p, g, l);
	}
	if (!p->rc && p->cfg->fleet.enabled) {
		char ferr[512];

		p->lineno = p->cfg->fleet.line;
		if (kg_fleet_conf_check(&p->cfg->fleet, ferr, sizeof(ferr)))
			kg_cfg_fail(p, "%s", ferr);
	}
}
