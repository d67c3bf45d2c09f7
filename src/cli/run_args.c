#include "cli/run_args.h"
#include "net/tap.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char run_usage[] =
	"usage: lockstep run --kernel ELF [--initrd FILE] [--cmdline STR] [--mem SIZE]\n"
	"                    [--disk PATH[,readonly][,replication=primary|secondary]]...\n"
	"                    [--net tap=IFNAME[,mac=MAC]|none]\n"
	"                    [--tap IFNAME] [--qmp SOCKETPATH] [--console stdio|file:PATH]\n"
	"                    [--restore SNAPSHOT | --incoming tcp:HOST:PORT] [--verbose]\n"
	"       lockstep primary --kernel ELF --peer HOST:PORT [--checkpoint-delay MS]\n"
	"                    [--compare-timeout MS] [--compare-scan MS] [--compare-queue N]\n"
	"                    [--mismatch-pcap FILE] [--peer-timeout MS]\n"
	"                    [the VM options of run]\n"
	"       lockstep secondary --listen HOST:PORT [--peer-timeout MS]\n"
	"                    [the VM options of run, same as the primary's]\n"
	"       lockstep failover --qmp SOCKETPATH   (a secondary that lost its primary takes over)\n"
	"       lockstep status --qmp SOCKETPATH     (the VM's and COLO's state)\n";

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case '\0': break;
	default: return -EINVAL;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (~0ULL >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

#define ARG_ERR(...) (snprintf(err, (size_t)errlen, __VA_ARGS__), -EINVAL)

#define DISK_SYNTAX "PATH[,readonly][,replication=primary|secondary]"

static int run_parse_disk_option(struct run_disk *d, const char *opt)
{
	if (strcmp(opt, "readonly") == 0)
		d->readonly = 1;
	else if (strcmp(opt, "replication=primary") == 0)
		d->replication = RUN_REPL_PRIMARY;
	else if (strcmp(opt, "replication=secondary") == 0)
		d->replication = RUN_REPL_SECONDARY;
	else
		return -EINVAL;
	return 0;
}

static int run_parse_disk(struct run_args *a, const char *arg, char *err, int errlen)
{
	char *copy, *opt, *next;
	struct run_disk *d;

	if (a->ndisks == RUN_MAX_DISKS)
		return ARG_ERR("--disk: at most %d disks", RUN_MAX_DISKS);
	copy = strdup(arg);
	if (!copy)
		return -ENOMEM;
	a->owned[a->ndisks] = copy;
	d = &a->disks[a->ndisks++];
	*d = (struct run_disk){ .path = copy };
	for (opt = strchr(copy, ','); opt; opt = next) {
		*opt++ = '\0';
		if ((next = strchr(opt, ',')))
			*next = '\0';
		if (run_parse_disk_option(d, opt) < 0)
			return ARG_ERR("--disk %s: unknown option '%s' (expected " DISK_SYNTAX ")", arg, opt);
		if (next)
			*next = ',';
	}
	if (!*copy)
		return ARG_ERR("--disk: empty path (expected " DISK_SYNTAX ")");
	if (d->readonly && d->replication)
		return ARG_ERR("--disk %s: a read-only disk is not replicated", arg);
	return 0;
}

static int run_parse_net(struct run_args *a, const char *arg, char *err, int errlen)
{
	const char *p = arg + 4, *comma;
	size_t len;

	if (a->net != RUN_NET_ABSENT)
		return ARG_ERR("--net: given twice (one network interface is supported)");
	if (strcmp(arg, "none") == 0) {
		a->net = RUN_NET_NONE;
		return 0;
	}
	if (strncmp(arg, "tap=", 4) != 0)
		return ARG_ERR("--net %s: expected tap=IFNAME[,mac=MAC] or none", arg);
	comma = strchr(p, ',');
	len = comma ? (size_t)(comma - p) : strlen(p);
	if (len == 0 || len >= sizeof(a->tap))
		return ARG_ERR("--net %s: interface name must be 1 to %zu characters", arg,
			       sizeof(a->tap) - 1);
	memcpy(a->tap, p, len);
	a->tap[len] = '\0';
	a->net = RUN_NET_TAP;
	if (!comma)
		return 0;
	if (strncmp(comma + 1, "mac=", 4) != 0)
		return ARG_ERR("--net %s: unknown option '%s' (expected mac=MAC)", arg, comma + 1);
	if (net_parse_mac(comma + 5, a->mac) < 0)
		return ARG_ERR("--net: bad MAC address '%s' (expected a unicast xx:xx:xx:xx:xx:xx)",
			       comma + 5);
	a->mac_set = 1;
	return 0;
}

static int run_parse_mem(struct run_args *a, const char *arg, char *err, int errlen)
{
	if (parse_size(arg, &a->mem_size) < 0)
		return ARG_ERR("--mem: bad size '%s' (expected e.g. 256M or 1G)", arg);
	if (a->mem_size % 4096)
		return ARG_ERR("--mem %s: not a multiple of 4 KiB", arg);
	if (a->mem_size < RUN_MIN_MEM || a->mem_size > RUN_MAX_MEM)
		return ARG_ERR("--mem %s: must be between 4M and 64G", arg);
	return 0;
}

static int run_parse_console(struct run_args *a, const char *arg, char *err, int errlen)
{
	if (strcmp(arg, "stdio") == 0) {
		a->console_file = NULL;
		return 0;
	}
	if (strncmp(arg, "file:", 5) == 0 && arg[5]) {
		a->console_file = arg + 5;
		return 0;
	}
	return ARG_ERR("--console %s: expected stdio or file:PATH", arg);
}

/* HOST:PORT (or tcp:HOST:PORT), stored as tcp:HOST:PORT. */
static int run_parse_endpoint(char *dst, size_t size, const char *opt, const char *arg, char *err,
			      int errlen)
{
	const char *colon = strrchr(arg, ':');

	if (!colon || colon == arg || !colon[1] || strlen(arg) + 5 > size)
		return ARG_ERR("%s %s: expected HOST:PORT", opt, arg);
	snprintf(dst, size, "%s%s", strncmp(arg, "tcp:", 4) == 0 ? "" : "tcp:", arg);
	return 0;
}

static int run_parse_ms(uint32_t *out, const char *opt, const char *arg, unsigned long min,
			unsigned long max, char *err, int errlen)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!isdigit((unsigned char)*arg) || *end || v < min || v > max)
		return ARG_ERR("%s %s: expected milliseconds between %lu and %lu", opt, arg, min, max);
	*out = (uint32_t)v;
	return 0;
}

static int run_parse_count(uint32_t *out, const char *opt, const char *arg, unsigned long min,
			   unsigned long max, char *err, int errlen)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);

	if (!isdigit((unsigned char)*arg) || *end || v < min || v > max)
		return ARG_ERR("%s %s: expected a number between %lu and %lu", opt, arg, min, max);
	*out = (uint32_t)v;
	return 0;
}

static int run_parse_delay(struct run_args *a, const char *arg, char *err, int errlen)
{
	return run_parse_ms(&a->checkpoint_delay_ms, "--checkpoint-delay", arg, 10, 3600000, err, errlen);
}

/* --tap IFNAME is --net tap=IFNAME. */
static int run_parse_tap(struct run_args *a, const char *arg, char *err, int errlen)
{
	char spec[32];

	if (snprintf(spec, sizeof(spec), "tap=%s", arg) >= (int)sizeof(spec))
		return ARG_ERR("--tap %s: interface name too long", arg);
	return run_parse_net(a, spec, err, errlen);
}

static int run_args_check(struct run_args *a, char *err, int errlen);

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'c' }, { "mem", required_argument, NULL, 'm' },
	{ "disk", required_argument, NULL, 'd' },    { "net", required_argument, NULL, 'n' },
	{ "qmp", required_argument, NULL, 'q' },     { "console", required_argument, NULL, 'C' },
	{ "verbose", no_argument, NULL, 'v' },       { "help", no_argument, NULL, 'h' },
	{ "restore", required_argument, NULL, 'r' }, { "incoming", required_argument, NULL, 'I' },
	{ "peer", required_argument, NULL, 'P' },    { "listen", required_argument, NULL, 'L' },
	{ "checkpoint-delay", required_argument, NULL, 'D' }, { "tap", required_argument, NULL, 'T' },
	{ "compare-timeout", required_argument, NULL, 'O' }, { "mismatch-pcap", required_argument, NULL, 'A' },
	{ "compare-scan", required_argument, NULL, 'S' },    { "compare-queue", required_argument, NULL, 'Q' },
	{ "peer-timeout", required_argument, NULL, 'H' },
	{ NULL, 0, NULL, 0 },
};

static int run_parse_one(struct run_args *a, int opt, char *err, int errlen)
{
	switch (opt) {
	case 'k': a->kernel = optarg; return 0;
	case 'i': a->initrd = optarg; return 0;
	case 'c': a->cmdline = optarg; return 0;
	case 'm': return run_parse_mem(a, optarg, err, errlen);
	case 'd': return run_parse_disk(a, optarg, err, errlen);
	case 'n': return run_parse_net(a, optarg, err, errlen);
	case 'q': a->qmp_path = optarg; return 0;
	case 'C': return run_parse_console(a, optarg, err, errlen);
	case 'v': a->verbose = 1; return 0;
	case 'r': a->restore = optarg; return 0;
	case 'I': a->incoming = optarg; return 0;
	case 'P': return run_parse_endpoint(a->peer_uri, sizeof(a->peer_uri), "--peer", optarg, err, errlen);
	case 'L': return run_parse_endpoint(a->listen_uri, sizeof(a->listen_uri), "--listen", optarg, err,
					    errlen);
	case 'D': return run_parse_delay(a, optarg, err, errlen);
	case 'T': return run_parse_tap(a, optarg, err, errlen);
	case 'O': return run_parse_ms(&a->compare_timeout_ms, "--compare-timeout", optarg, 1, 600000, err, errlen);
	case 'A': a->mismatch_pcap = optarg; return 0;
	case 'S': return run_parse_ms(&a->compare_scan_ms, "--compare-scan", optarg, 1, 10000, err, errlen);
	case 'Q': return run_parse_count(&a->compare_queue, "--compare-queue", optarg, 16, 1000000, err, errlen);
	case 'H': return run_parse_ms(&a->peer_timeout_ms, "--peer-timeout", optarg, 200, 600000, err, errlen);
	case 'h': return 1;
	default: return ARG_ERR("unknown or incomplete option '%s'", optarg ? optarg : "?");
	}
}

int run_args_parse(struct run_args *a, int argc, char **argv, char *err, int errlen)
{
	int opt;

	memset(a, 0, sizeof(*a));
	a->mem_size = RUN_DEFAULT_MEM;
	a->checkpoint_delay_ms = RUN_DEFAULT_CHECKPOINT_DELAY_MS;
	a->role = strcmp(argv[0], "primary") == 0     ? RUN_ROLE_PRIMARY
		  : strcmp(argv[0], "secondary") == 0 ? RUN_ROLE_SECONDARY
						      : RUN_ROLE_VM;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
		int ret;

		if (opt == '?' || opt == ':')
			return ARG_ERR("%s option '%s'", opt == ':' ? "missing value for" : "unknown",
				       argv[optind - 1]);
		ret = run_parse_one(a, opt, err, errlen);
		if (ret)
			return ret;
	}
	if (optind < argc)
		return ARG_ERR("unexpected argument '%s'", argv[optind]);
	return run_args_check(a, err, errlen);
}

/* Options that only make sense together, per command. */
static int run_args_check(struct run_args *a, char *err, int errlen)
{
	if (a->role != RUN_ROLE_PRIMARY && a->peer_uri[0])
		return ARG_ERR("--peer belongs to `lockstep primary`");
	if (a->role != RUN_ROLE_SECONDARY && a->listen_uri[0])
		return ARG_ERR("--listen belongs to `lockstep secondary`");
	for (int i = 0; i < a->ndisks; i++)
		if (a->role != RUN_ROLE_VM && a->disks[i].replication)
			return ARG_ERR("--disk %s,replication=...: for `lockstep run`; `lockstep primary` and "
				       "`lockstep secondary` replicate every writable disk themselves",
				       a->disks[i].path);
	if (a->role == RUN_ROLE_VM && a->peer_timeout_ms)
		return ARG_ERR("--peer-timeout belongs to `lockstep primary` and `lockstep secondary`");
	if (a->role == RUN_ROLE_PRIMARY && !a->peer_uri[0])
		return ARG_ERR("lockstep primary needs --peer HOST:PORT (where the secondary listens)");
	if (a->role == RUN_ROLE_SECONDARY) {
		if (!a->listen_uri[0])
			return ARG_ERR("lockstep secondary needs --listen HOST:PORT");
		if (a->incoming || a->restore)
			return ARG_ERR("lockstep secondary takes its VM from the primary: drop --incoming/--restore");
		a->incoming = a->listen_uri;
	}
	if (a->restore && a->incoming)
		return ARG_ERR("--restore and --incoming exclude each other");
	if (!a->kernel && !a->restore && !a->incoming)
		return ARG_ERR("--kernel ELF is required (or --restore SNAPSHOT, or --incoming tcp:HOST:PORT)");
	if ((a->restore || a->incoming) && (a->kernel || a->initrd || a->cmdline))
		return ARG_ERR("%s takes the guest from the saved state: drop --kernel, --initrd and --cmdline",
			       a->restore ? "--restore"
			       : a->role == RUN_ROLE_SECONDARY ? "lockstep secondary" : "--incoming");
	return 0;
}

void run_args_free(struct run_args *a)
{
	for (size_t i = 0; i < sizeof(a->owned) / sizeof(a->owned[0]); i++)
		free(a->owned[i]);
	memset(a->owned, 0, sizeof(a->owned));
}
