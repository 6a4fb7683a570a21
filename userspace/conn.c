#include "conn.h"
#include "stats.h"

const char *kg_close_reason_str(enum kg_close_reason r)
{
	switch (r) {
	case KG_CLOSE_NONE: return "none";
	case KG_CLOSE_DONE: return "done";
	case KG_CLOSE_REJECTED: return "rejected";
	case KG_CLOSE_HANDSHAKE_TIMEOUT: return "handshake_timeout";
	case KG_CLOSE_BACKEND_CONNECT: return "backend_connect_failed";
	case KG_CLOSE_BACKEND_ERROR: return "backend_error";
	case KG_CLOSE_CLIENT_ERROR: return "client_error";
	case KG_CLOSE_IDLE_TIMEOUT: return "idle_timeout";
	case KG_CLOSE_SHUTDOWN: return "shutdown";
	case KG_CLOSE_INTERNAL: return "internal_error";
	case KG_CLOSE_REVOKED: return "revoked";
	case KG_CLOSE_KILLED: return "killed";
	case KG_CLOSE_KEYUPDATE: return "keyupdate_unsupported";
	case KG_CLOSE_KTLS_REQUIRED: return "ktls_required";
	case KG_CLOSE_MAX_LIFETIME: return "max_lifetime";
	case KG_CLOSE__COUNT: break;
	}
	return "?";
}

_Static_assert(KG_CLOSE__COUNT <= KG_CLOSES_MAX, "struct kg_stats.closes is too small");
