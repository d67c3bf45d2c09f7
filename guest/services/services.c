#include "services.h"

static const struct {
	const char *name;
	enum service bit;
} names[] = {
	{ "echo", SERVICE_ECHO },
	{ "kv", SERVICE_KV },
	{ "http", SERVICE_HTTP },
	{ "stream", SERVICE_STREAM },
	{ "discard", SERVICE_DISCARD },
};

static int lookup(const char *s, size_t len, unsigned *bit)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
			*bit = names[i].bit;
			return 0;
		}
	}
	return -1;
}

int services_parse(const char *list, unsigned *set, const char **bad)
{
	*set = 0;
	while (*list) {
		const char *plus = strchr(list, '+');
		size_t len = plus ? (size_t)(plus - list) : strlen(list);
		unsigned bit;

		if (len && lookup(list, len, &bit) < 0) {
			*bad = list;
			return -1;
		}
		if (len)
			*set |= bit;
		list += len + (plus != NULL);
	}
	return 0;
}

static int started(int r, const char *name)
{
	if (r < 0)
		printf("services: %s failed to start\n", name);
	return r;
}

int services_start(const struct services_config *cfg)
{
	if ((cfg->set & SERVICE_ECHO) && started(echo_start(), "echo") < 0)
		return -1;
	if ((cfg->set & SERVICE_KV) && started(kv_start(cfg->kv_disk), "kv") < 0)
		return -1;
	if ((cfg->set & SERVICE_HTTP) && started(http_start(), "http") < 0)
		return -1;
	if ((cfg->set & SERVICE_DISCARD) && started(discard_start(), "discard") < 0)
		return -1;
	if ((cfg->set & SERVICE_STREAM) &&
	    started(stream_start(&cfg->stream_addr, cfg->stream_port, cfg->stream_bytes), "stream") < 0)
		return -1;
	return 0;
}

void services_poll(void) { kv_poll(); }
