/* cmocka tests for the INI configuration parser: defaults, and every error
 * path with its FILE:LINE message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <openssl/ssl.h>

#include "config.h"

static char tmpdir[256];
static char cfgpath[512];
static char pem[512];

static int setup(void **state)
{
	FILE *f;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kg-test-config-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/t.conf", tmpdir);
	snprintf(pem, sizeof(pem), "%s/x.pem", tmpdir);
	f = fopen(pem, "w");
	if (!f)
		return -1;
	fputs("placeholder\n", f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Write @body (with %P for the placeholder PEM path) to the config file. */
static void write_conf(const char *body)
{
	FILE *f = fopen(cfgpath, "w");
	const char *p;

	assert_non_null(f);
	for (p = body; *p; p++) {
		if (p[0] == '%' && p[1] == 'P') {
			fputs(pem, f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	fclose(f);
}

/* Write @body and parse it. */
static int load(const char *body, struct kg_config **cfg, char *err, size_t errlen)
{
	write_conf(body);
	return kg_config_load(cfgpath, cfg, err, errlen);
}

#define GOOD_LISTENER \
	"[listener edge]\n" \
	"listen = 127.0.0.1:8443\n" \
	"cert = %P\n" \
	"key = %P\n" \
	"client_ca = %P\n" \
	"backend = 127.0.0.1:8080\n"

static void test_config_minimal_defaults(void **state)
{
	struct kg_config *cfg = NULL;
	char err[512];
	struct kg_listener_conf *l;

	assert_int_equal(load(GOOD_LISTENER, &cfg, err, sizeof(err)), 0);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_listeners, 1);
	assert_int_equal(cfg->workers, 0);
	l = &cfg->listeners[0];
	assert_string_equal(l->name, "edge");
	assert_int_equal(l->verify_depth, 4);
	assert_int_equal(l->tls_min, TLS1_2_VERSION);
	assert_int_equal(l->tls_max, TLS1_3_VERSION);
	assert_int_equal(l->handshake_timeout_ms, 10000);
	assert_int_equal(l->connect_timeout_ms, 5000);
	assert_int_equal(l->idle_timeout_ms, 300000);
	assert_null(l->trust);
	assert_null(l->ciphers);
	assert_string_equal(l->listen.text, "127.0.0.1:8443");
	assert_int_equal(l->listen.ss.ss_family, AF_INET);
	assert_int_equal(l->line[KG_LK_BACKEND], 6);
	kg_config_free(cfg);
}

static void test_config_full(void **state)
{
	struct kg_config *cfg = NULL;
	char err[512];
	struct kg_listener_conf *l;

	assert_int_equal(load("; comment\n[global]\nworkers = 3\nlog_format = json\nlog_level = debug\n"
			      GOOD_LISTENER
			      "trust = %P\nverify_depth = 2\ntls_min = 1.3\ntls_max = 1.3\n"
			      "ciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n"
			      "ciphersuites = TLS_AES_128_GCM_SHA256\n"
			      "handshake_timeout = 250ms\nconnect_timeout = 2s\nidle_timeout = 5m\n"
			      "max_connections = 100\nmax_lifetime = 1h\nktls = off\n"
			      "[listener v6]\nlisten = [::1]:0\ncert = %P\nkey = %P\nclient_ca = %P\n"
			      "backend = [::1]:9000\n", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->workers, 3);
	assert_true(cfg->log_json);
	assert_int_equal(cfg->log_level, 3);
	assert_int_equal(cfg->n_listeners, 2);
	l = &cfg->listeners[0];
	assert_non_null(l->trust);
	assert_int_equal(l->verify_depth, 2);
	assert_int_equal(l->tls_min, TLS1_3_VERSION);
	assert_int_equal(l->handshake_timeout_ms, 250);
	assert_int_equal(l->connect_timeout_ms, 2000);
	assert_int_equal(l->idle_timeout_ms, 300000);
	assert_int_equal(l->max_connections, 100);
	assert_int_equal(l->max_lifetime_ms, 3600000);
	assert_int_equal(l->ktls, KG_KTLS_OFF);
	assert_string_equal(l->ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_int_equal(cfg->listeners[1].listen.ss.ss_family, AF_INET6);
	kg_config_free(cfg);
}

/* Each bad input: the expected FILE:LINE and a fragment of the advice. */
struct bad_case {
	const char *body;
	unsigned line;
	const char *needle;
};

static const struct bad_case bad_cases[] = {
	{ "[global]\nworkers = many\n" GOOD_LISTENER, 2, "workers = many" },
	{ "[global]\nworkers = 0x4\n" GOOD_LISTENER, 2, "number from 1 to 1024" },
	{ "[global]\nfoo = 1\n" GOOD_LISTENER, 2, "unknown key 'foo' in [global]" },
	{ "[global]\nlog_level = loud\n" GOOD_LISTENER, 2, "log_level = loud" },
	{ "[global]\nlog_format = xml\n" GOOD_LISTENER, 2, "text or json" },
	{ "[global]\nmax_connections = -1\n" GOOD_LISTENER, 2, "max_connections" },
	{ "[frontend x]\nlisten = 1.2.3.4:1\n", 1, "unknown section [frontend x]" },
	{ "[listener]\nlisten = 127.0.0.1:1\n", 1, "needs a name" },
	{ "[listener bad/name]\nlisten = 127.0.0.1:1\n", 1, "letters, digits" },
	{ GOOD_LISTENER "color = blue\n", 7, "unknown key 'color'" },
	{ GOOD_LISTENER "listen = 127.0.0.1:9\n", 7, "set twice" },
	{ "[listener a]\nlisten = 127.0.0.1\n", 2, "has no port" },
	{ "[listener a]\nlisten = 127.0.0.1:99999\n", 2, "0-65535" },
	{ "[listener a]\nlisten = [::1:80\n", 2, "[IPv6]:PORT" },
	{ "[listener a]\nlisten = no.such.host.invalid:80\n", 2, "cannot resolve" },
	{ "[listener a]\nbackend = 127.0.0.1:0\n", 2, "non-zero port" },
	{ "[listener a]\ncert = /nonexistent/cert.pem\n", 2, "No such file" },
	{ "[listener a]\nkey = \n", 2, "key is empty" },
	{ "[listener a]\nverify_depth = 0\n", 2, "from 1 to 16" },
	{ "[listener a]\nverify_depth = 17\n", 2, "from 1 to 16" },
	{ "[listener a]\ntls_min = 1.1\n", 2, "1.2 or 1.3" },
	{ "[listener a]\nciphers =\n", 2, "ciphers is empty" },
	{ "[listener a]\nhandshake_timeout = soon\n", 2, "positive duration" },
	{ "[listener a]\nidle_timeout = 0\n", 2, "positive duration" },
	{ "[listener a]\nconnect_timeout = 5 s\n", 2, "positive duration" },
	{ "[listener a]\nbacklog = 0\n", 2, "backlog" },
	{ "[listener a]\nktls = maybe\n", 2, "auto, on or off" },
	{ "[listener a]\nmax_connections = lots\n", 2, "max_connections" },
	{ "[listener a]\nmax_lifetime = forever\n", 2, "max_lifetime = forever" },
	{ "listen = 127.0.0.1:1\n", 1, "outside any section" },
	{ "[global]\nworkers = 2\n", 2, "no [listener NAME] section" },
	{ "[listener a]\nlisten = 127.0.0.1:1\ncert = %P\n", 1, "has no 'key'" },
	{ "[listener a]\nthis line has no equals sign\n", 2, "syntax error" },
	{ GOOD_LISTENER "tls_min = 1.3\ntls_max = 1.2\n", 7, "above tls_max" },
	{ GOOD_LISTENER "[listener edge]\nlisten = 127.0.0.1:1\n", 7, "defined twice" },
	{ GOOD_LISTENER "[listener b]\nlisten = 127.0.0.1:8443\ncert = %P\nkey = %P\n"
	  "client_ca = %P\nbackend = 127.0.0.1:1\n", 8, "give each its own address" },
	/* the origin leg */
	{ GOOD_LISTENER "backend_tls = yes\n", 7, "backend_tls = yes: must be on or off" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_ca = /nonexistent/ca.pem\n", 8, "No such file" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_ca =\n", 8, "backend_ca is empty" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_name = bad_name!\n", 8, "not a DNS name" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_name = *.example.com\n", 8, "not a DNS name" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_tls_min = 1.0\n", 8,
	  "backend_tls_min = 1.0: must be 1.2 or 1.3" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_tls_max = tls9\n", 8, "must be 1.2 or 1.3" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_tls_min = 1.3\nbackend_tls_max = 1.2\n", 8,
	  "backend_tls_min (1.3) is above backend_tls_max (1.2)" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_ciphers =\n", 8, "backend_ciphers is empty" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_ciphersuites =\n", 8,
	  "backend_ciphersuites is empty" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_cert = %P\n", 8, "has backend_cert but no backend_key" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_key = %P\n", 8, "has backend_key but no backend_cert" },
	{ GOOD_LISTENER "backend_ca = %P\n", 7, "'backend_ca' has no effect while backend_tls is off" },
	{ GOOD_LISTENER "backend_tls = off\nbackend_name = origin.example\n", 8,
	  "add backend_tls = on" },
	{ GOOD_LISTENER "backend_tls = on\nbackend_tls = off\n", 8, "set twice" },
	/* client mode and optional client certificates */
	{ GOOD_LISTENER "tls = maybe\n", 7, "tls = maybe: must be on" },
	{ GOOD_LISTENER "tls = off\nbackend_tls = on\n", 3, "'cert' has no effect with tls = off" },
	{ "[listener c]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\ntls = off\n", 4,
	  "add backend_tls = on" },
	{ "[listener c]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\ntls = off\n"
	  "backend_tls = on\nclient_auth = optional\n", 6, "'client_auth' has no effect with tls = off" },
	{ "[listener c]\nlisten = 127.0.0.1:1\nbackend = 127.0.0.1:2\ntls = off\n"
	  "backend_tls = on\n[sni c a.example]\ncert = %P\nkey = %P\nclient_ca = %P\n", 6,
	  "has tls = off" },
	{ "[listener c]\nlisten = 127.0.0.1:1\ntls = off\nbackend_tls = on\n", 1, "has no 'backend'" },
	{ GOOD_LISTENER "client_auth = sometimes\n", 7, "must be required or optional" },
	{ GOOD_LISTENER "[sni edge a.example]\ncert = %P\nkey = %P\nclient_ca = %P\n"
	  "client_auth = never\n", 11, "must be required or optional" },
	{ GOOD_LISTENER "[sni edge a.example]\nbackend_tls = on\n", 8,
	  "cannot be set per server name" },
};

static void test_config_errors_name_file_and_line(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct kg_config *cfg = (void *)1;
		char err[1024], want[600];
		int rc = load(bad_cases[i].body, &cfg, err, sizeof(err));

		if (rc != -EINVAL || cfg != NULL)
			fail_msg("case %zu: rc=%d, expected -EINVAL", i, rc);
		snprintf(want, sizeof(want), "%s:%u: ", cfgpath, bad_cases[i].line);
		if (strncmp(err, want, strlen(want)))
			fail_msg("case %zu: '%s' does not start with '%s'", i, err, want);
		if (!strstr(err, bad_cases[i].needle))
			fail_msg("case %zu: '%s' lacks '%s'", i, err, bad_cases[i].needle);
	}
}

/* KG_GLOBAL_KEYS (what the front lets through in [global]): every key
 * listed is one config.c knows (a bad value is refused for its value, or
 * the file for its missing listener, never as an unknown key), and the
 * unknown-key error prints the list. A key config.c takes and the list
 * lacks is not caught here: it only makes the front hand such files over. */
static void test_config_global_keys_list(void **state)
{
	static const char *const known[] = KG_GLOBAL_KEYS;
	struct kg_config *cfg = NULL;
	char body[256], err[1024];
	size_t i;

	for (i = 0; known[i]; i++) {
		snprintf(body, sizeof(body), "[global]\n%s = ?bad?\n", known[i]);
		assert_int_not_equal(load(body, &cfg, err, sizeof(err)), 0);	/* no listener */
		if (strstr(err, "unknown key"))
			fail_msg("%s is in KG_GLOBAL_KEYS but config.c does not know it: %s", known[i], err);
	}
	assert_int_not_equal(load("[global]\nbogus = 1\n", &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "unknown key 'bogus' in [global]; valid keys: workers, "
			       "max_connections, log_level, log_format, state_dir, bpf_pin_root, "
			       "revocation, revocation_scan_interval, drain_timeout, admin_socket, "
			       "metrics, user"));
}

/* The origin leg's keys, client mode and optional client certificates. */
static void test_config_origin_tls(void **state)
{
	struct kg_config *cfg = NULL;
	char err[512];
	struct kg_listener_conf *l;

	assert_int_equal(load(GOOD_LISTENER, &cfg, err, sizeof(err)), 0);
	l = &cfg->listeners[0];
	assert_false(l->origin.on);
	assert_false(l->tls_off);
	assert_false(l->client_auth_optional);
	kg_config_free(cfg);

	assert_int_equal(load(GOOD_LISTENER "backend_tls = on\nbackend_ca = %P\nbackend_cert = %P\n"
			      "backend_key = %P\nbackend_tls_min = 1.3\nbackend_tls_max = 1.3\n"
			      "backend_ciphers = ECDHE-ECDSA-AES256-GCM-SHA384\n"
			      "backend_ciphersuites = TLS_CHACHA20_POLY1305_SHA256\n"
			      "client_auth = optional\n"
			      "[sni edge a.example]\ncert = %P\nkey = %P\nclient_ca = %P\n"
			      "[sni edge b.example]\ncert = %P\nkey = %P\nclient_ca = %P\n"
			      "client_auth = required\n", &cfg, err, sizeof(err)), 0);
	l = &cfg->listeners[0];
	assert_true(l->origin.on);
	assert_string_equal(l->origin.ca, pem);
	assert_string_equal(l->origin.cert, pem);
	assert_string_equal(l->origin.key, pem);
	assert_int_equal(l->origin.tls_min, TLS1_3_VERSION);
	assert_int_equal(l->origin.tls_max, TLS1_3_VERSION);
	assert_string_equal(l->origin.ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384");
	assert_string_equal(l->origin.ciphersuites, "TLS_CHACHA20_POLY1305_SHA256");
	/* backend is an address and no name is given: the address is checked */
	assert_string_equal(l->origin.name, "");
	assert_string_equal(l->origin.ip, "127.0.0.1");
	assert_true(l->client_auth_optional);
	assert_int_equal(l->n_sni, 2);
	assert_true(l->sni[0].client_auth_optional);	/* inherited */
	assert_false(l->sni[1].client_auth_optional);	/* its own */
	kg_config_free(cfg);

	/* backend_name wins over the address; defaults for the rest */
	assert_int_equal(load(GOOD_LISTENER "backend_tls = on\nbackend_name = Origin.Example.com\n",
			      &cfg, err, sizeof(err)), 0);
	l = &cfg->listeners[0];
	assert_string_equal(l->origin.name, "Origin.Example.com");
	assert_null(l->origin.ca);
	assert_null(l->origin.cert);
	assert_int_equal(l->origin.tls_min, TLS1_2_VERSION);
	assert_int_equal(l->origin.tls_max, TLS1_3_VERSION);
	kg_config_free(cfg);

	/* a backend given by name: that name is the default */
	assert_int_equal(load("[listener edge]\nlisten = 127.0.0.1:8443\ncert = %P\nkey = %P\n"
			      "client_ca = %P\nbackend = localhost:8080\nbackend_tls = on\n",
			      &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->listeners[0].origin.name, "localhost");
	assert_string_equal(cfg->listeners[0].origin.ip, "");
	kg_config_free(cfg);

	/* IPv6 address */
	assert_int_equal(load("[listener edge]\nlisten = 127.0.0.1:8443\ncert = %P\nkey = %P\n"
			      "client_ca = %P\nbackend = [::1]:8080\nbackend_tls = on\n",
			      &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->listeners[0].origin.ip, "::1");
	kg_config_free(cfg);

	/* client mode: no certificate of our own needed */
	assert_int_equal(load("[listener local]\nlisten = 127.0.0.1:8080\ntls = off\n"
			      "backend = 127.0.0.1:9443\nbackend_tls = on\nbackend_cert = %P\n"
			      "backend_key = %P\nbackend_ca = %P\n", &cfg, err, sizeof(err)), 0);
	l = &cfg->listeners[0];
	assert_true(l->tls_off);
	assert_true(l->origin.on);
	assert_null(l->cert);
	assert_null(l->client_ca);
	kg_config_free(cfg);
}

static void test_config_missing_file(void **state)
{
	struct kg_config *cfg = (void *)1;
	char err[512];

	assert_int_equal(kg_config_load("/nonexistent/ktlsgw.conf", &cfg, err, sizeof(err)), -ENOENT);
	assert_null(cfg);
	assert_non_null(strstr(err, "-c FILE"));
}

/* Root reads any file, so as root the load runs in a child that has become
 * nobody (65534): the access check must really fail there. The child sends
 * back the return code and the message. */
static void test_config_unreadable_cert(void **state)
{
	struct { int rc; char err[512]; } res = { 0 };
	struct kg_config *cfg = NULL;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	chmod(tmpdir, 0755);	/* nobody may reach the file, only not read it */
	write_conf(GOOD_LISTENER);
	chmod(pem, 0);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) || setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)))
			_exit(3);
		/* no cmocka assertion in the child: it reports through the pipe */
		res.rc = kg_config_load(cfgpath, &cfg, res.err, sizeof(res.err));
		n = write(fds[1], &res, sizeof(res));
		_exit(n == (ssize_t)sizeof(res) ? 0 : 4);
	}
	close(fds[1]);
	n = read(fds[0], &res, sizeof(res));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	chmod(pem, 0644);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(n, sizeof(res));
	assert_int_equal(res.rc, -EINVAL);
	assert_non_null(strstr(res.err, "Permission denied"));
	assert_non_null(strstr(res.err, pem));
}

static void test_config_duration_parse(void **state)
{
	unsigned ms;

	assert_int_equal(kg_duration_parse("10", &ms), 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(kg_duration_parse("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(kg_duration_parse("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(kg_duration_parse("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(kg_duration_parse("5x", &ms), -EINVAL);
	assert_int_equal(kg_duration_parse("", &ms), -EINVAL);
	assert_int_equal(kg_duration_parse("-1", &ms), -EINVAL);
	assert_int_equal(kg_duration_parse("99999999999h", &ms), -EINVAL);
}

static void test_config_server_name_match(void **state)
{
	(void)state;
	assert_true(kg_server_name_match("api.example.com", "API.Example.com"));
	assert_false(kg_server_name_match("api.example.com", "api.example.com.evil"));
	assert_true(kg_server_name_match("*.example.com", "a.example.com"));
	assert_false(kg_server_name_match("*.example.com", "example.com"));
	assert_false(kg_server_name_match("*.example.com", "a.b.example.com"));
	assert_false(kg_server_name_match("*.example.com", ".example.com"));
	assert_false(kg_server_name_match("*.example.com", "aexample.com"));
}

static void test_config_addr_parse(void **state)
{
	struct kg_addr a;
	char err[256];

	assert_int_equal(kg_addr_parse("*:443", true, &a, err, sizeof(err)), 0);
	assert_int_equal(a.ss.ss_family, AF_INET);
	assert_int_equal(kg_addr_parse(":443", true, &a, err, sizeof(err)), 0);
	assert_int_equal(kg_addr_parse("[::]:443", true, &a, err, sizeof(err)), 0);
	assert_int_equal(a.ss.ss_family, AF_INET6);
	assert_int_equal(kg_addr_parse("localhost:80", false, &a, err, sizeof(err)), 0);
	assert_int_equal(kg_addr_parse("127.0.0.1:x", false, &a, err, sizeof(err)), -EINVAL);
}

/* A cipher string of @n characters: OpenSSL names joined by ':'. */
static char *long_ciphers(size_t n)
{
	static const char *const names[] = { "ECDHE-ECDSA-AES128-GCM-SHA256",
					     "ECDHE-RSA-AES128-GCM-SHA256" };
	char *s = malloc(n + 1);
	size_t o = 0, i = 0;

	assert_non_null(s);
	while (o < n) {
		size_t k = strlen(names[i % 2]);

		if (o && o < n)
			s[o++] = ':';
		memcpy(s + o, names[i++ % 2], o + k <= n ? k : n - o);
		o += o + k <= n ? k : n - o;
	}
	s[n] = '\0';
	return s;
}

/* Item: lines of any length. A 4 KiB `ciphers =` line (Debian's inih cut
 * lines at 200 bytes) arrives whole, and the line after it keeps its number. */
static void test_config_long_line_whole(void **state)
{
	struct kg_config *cfg = NULL;
	char err[512], *body, *ciphers = long_ciphers(4096);
	size_t blen = strlen(GOOD_LISTENER) + 4096 + 64;

	body = malloc(blen);
	assert_non_null(body);
	snprintf(body, blen, "%sciphers = %s\nbacklog = 64\n", GOOD_LISTENER, ciphers);
	if (load(body, &cfg, err, sizeof(err)))
		fail_msg("a 4 KiB ciphers line: %s", err);
	assert_non_null(cfg->listeners[0].ciphers);
	assert_int_equal(strlen(cfg->listeners[0].ciphers), 4096);
	assert_string_equal(cfg->listeners[0].ciphers, ciphers);
	assert_int_equal(cfg->listeners[0].line[KG_LK_CIPHERS], 7);
	assert_int_equal(cfg->listeners[0].line[KG_LK_BACKLOG], 8);
	assert_int_equal(cfg->listeners[0].backlog, 64);
	kg_config_free(cfg);
	free(body);
	free(ciphers);
}

/* Errors after, and on, a long line name the right line. */
static void test_config_long_line_errors_name_the_line(void **state)
{
	struct kg_config *cfg = NULL;
	char err[1024], want[600], *body, *ciphers = long_ciphers(1000);
	size_t blen = strlen(GOOD_LISTENER) + 3000 + 64, i;

	body = malloc(blen);
	assert_non_null(body);
	for (i = 0; i < 3; i++) {
		unsigned line = i == 0 ? 9 : i == 1 ? 8 : 7;

		if (i == 0)	/* a long comment and a long value, then a bad key */
			snprintf(body, blen, "%s; %s\nciphers = %s\ncolor = blue\n",
				 GOOD_LISTENER, ciphers, ciphers);
		else if (i == 1)	/* an unknown key with a long value */
			snprintf(body, blen, "%s; short\ncolour = %s\n", GOOD_LISTENER, ciphers);
		else	/* set twice, the second time on a long line after a long one */
			snprintf(body, blen, "%sciphers = %s\nciphers = %s\n", GOOD_LISTENER,
				 ciphers, ciphers);
		cfg = NULL;
		if (load(body, &cfg, err, sizeof(err)) != -EINVAL)
			fail_msg("case %zu: accepted", i);
		snprintf(want, sizeof(want), "%s:%u: ", cfgpath, i == 2 ? 8 : line);
		if (strncmp(err, want, strlen(want)))
			fail_msg("case %zu: '%.200s' does not start with '%s'", i, err, want);
	}
	free(body);
	free(ciphers);
}

/* The INI dialect the parser keeps: comments with ; or #, an inline
 * comment after " ;", key: value, blanks around names and values, a UTF-8
 * byte-order mark, CRLF line ends, and a last line without a newline. */
static void test_config_ini_dialect(void **state)
{
	struct kg_config *cfg = NULL;
	char err[512];
	struct kg_listener_conf *l;

	if (load("\xef\xbb\xbf# leading comment\r\n"
		 "[listener edge]   \r\n"
		 "  listen   =   127.0.0.1:8443   ; where clients come\r\n"
		 "cert = %P\n"
		 "key: %P\n"
		 "client_ca = %P\n"
		 "\n"
		 "  ; indented comment\n"
		 "ciphers = ECDHE+AESGCM;no space, so part of the value\n"
		 "backend = 127.0.0.1:8080", &cfg, err, sizeof(err)))
		fail_msg("%s", err);
	l = &cfg->listeners[0];
	assert_string_equal(l->listen.text, "127.0.0.1:8443");
	assert_string_equal(l->ciphers, "ECDHE+AESGCM;no space, so part of the value");
	assert_int_equal(l->line[KG_LK_SECTION], 2);
	assert_int_equal(l->line[KG_LK_KEY], 5);
	assert_int_equal(l->line[KG_LK_BACKEND], 10);
	kg_config_free(cfg);
	/* a section header that is not closed is a syntax error on its line */
	assert_int_equal(load(GOOD_LISTENER "[listener b\n", &cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":7: "));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_minimal_defaults),
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_errors_name_file_and_line),
		cmocka_unit_test(test_config_global_keys_list),
		cmocka_unit_test(test_config_origin_tls),
		cmocka_unit_test(test_config_missing_file),
		cmocka_unit_test(test_config_unreadable_cert),
		cmocka_unit_test(test_config_duration_parse),
		cmocka_unit_test(test_config_addr_parse),
		cmocka_unit_test(test_config_server_name_match),
		cmocka_unit_test(test_config_long_line_whole),
		cmocka_unit_test(test_config_long_line_errors_name_the_line),
		cmocka_unit_test(test_config_ini_dialect),
	};

	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
