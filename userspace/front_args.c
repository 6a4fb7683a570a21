/* The front's command line and configuration (front.h). libc only. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "front.h"
#include "ini.h"
#include "kg_revoke.h"

/* "--name VALUE" or "--name=VALUE" at argv[*i]; false if not this option
 * or a value is missing. */
static bool kg_front_opt(int argc, char **argv, int *i, const char *name, char shortname,
			 const char **out)
{
	const char *a = argv[*i];
	size_t n = strlen(name);

	if (shortname && a[0] == '-' && a[1] == shortname && !a[2]) {
		if (*i + 1 >= argc)
			return false;
		*out = argv[++*i];
		return true;
	}
	if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
		return false;
	if (a[2 + n] == '=') {
		*out = a + 3 + n;
		return true;
	}
	if (a[2 + n] || *i + 1 >= argc)
		return false;
	*out = argv[++*i];
	return true;
}

bool kg_front_args(int argc, char **argv, struct kg_front *f)
{
	const char *ops[3];
	int i, nops = 0;
	bool rest = false;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, **dst;

		if (rest || a[0] != '-' || !a[1]) {
			if (nops == 3)
				return false;
			ops[nops++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			rest = true;
			continue;
		}
		if (kg_front_opt(argc, argv, &i, "config", 'c', &v))
			dst = &f->config;
		else if (kg_front_opt(argc, argv, &i, "state-dir", 0, &v))
			dst = &f->state_dir;
		else if (kg_front_opt(argc, argv, &i, "pin-root", 0, &v))
			dst = &f->pin_root;
		else if (kg_front_opt(argc, argv, &i, "reason", 0, &v))
			dst = &f->reason;
		else
			return false;
		if (*dst)
			return false;
		*dst = v;
	}
	if (nops != 3 || strcmp(ops[0], "revoke"))
		return false;
	if (!strcmp(ops[1], "add"))
		f->add = true;
	else if (strcmp(ops[1], "del") || f->reason)
		return false;
	f->fp_text = ops[2];
	return true;
}

struct kg_front_ini {
	struct kg_front *f;
	bool in_section, in_global, set_state, set_pins, ok;
};

/* [global] state_dir and bpf_pin_root. A [fleet] section (whose writes need
 * libnats), a section config.c does not know (a misspelt [Fleet] among
 * them), a key outside any section, a [global] key it does not know or a
 * syntax error hands the command over: the full binary then says what is
 * wrong. */
static bool kg_front_ini_item(void *arg, enum kg_ini_item what, char *name, char *value)
{
	struct kg_front_ini *p = arg;
	char *dst;
	bool *seen;

	if (what == KG_INI_ERROR)
		return p->ok = false;
	if (what == KG_INI_SECTION) {
		p->in_section = true;
		p->in_global = !strcmp(name, "global");
		if (p->in_global || !strncmp(name, "sni ", 4) || !strcmp(name, "listener") ||
		    !strncmp(name, "listener ", 9))
			return true;
		return p->ok = false;
	}
	if (!p->in_section)
		return p->ok = false;
	if (!p->in_global)
		return true;
	if (strcmp(name, "state_dir") && strcmp(name, "bpf_pin_root")) {
		static const char *const known[] = KG_GLOBAL_KEYS;
		size_t i;

		for (i = 0; known[i]; i++)
			if (!strcmp(name, known[i]))
				return true;
		return p->ok = false;	/* config.c: "unknown key" */
	}
	seen = name[0] == 's' ? &p->set_state : &p->set_pins;
	dst = name[0] == 's' ? p->f->state : p->f->pins;
	/* what config.c accepts: an absolute path with room for its files */
	if (*seen || value[0] != '/' || strlen(value) >= sizeof(p->f->state) - 16)
		return p->ok = false;
	*seen = true;
	snprintf(dst, sizeof(p->f->state), "%s", value);
	return true;
}

bool kg_front_paths(struct kg_front *f)
{
	struct kg_front_ini p = { .f = f, .ok = true };
	unsigned line = 0;
	FILE *in;

	snprintf(f->state, sizeof(f->state), "%s", KG_STATE_DIR_DEFAULT);
	snprintf(f->pins, sizeof(f->pins), "%s", KG_PIN_ROOT_DEFAULT);
	if (f->config) {
		in = fopen(f->config, "re");
		if (!in)
			return false;
		if (kg_ini_read(in, &line, kg_front_ini_item, &p))
			p.ok = false;
		fclose(in);
		if (!p.ok)
			return false;
	}
	if (f->state_dir)
		snprintf(f->state, sizeof(f->state), "%s", f->state_dir);
	if (f->pin_root)
		snprintf(f->pins, sizeof(f->pins), "%s", f->pin_root);
	return true;
}

