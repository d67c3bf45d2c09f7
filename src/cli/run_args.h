/* `lockstep run` command-line options, parsed and validated before anything starts. */
#ifndef LOCKSTEP_CLI_RUN_ARGS_H
#define LOCKSTEP_CLI_RUN_ARGS_H

#include <stdint.h>

#define RUN_MAX_DISKS 4
#define RUN_DEFAULT_MEM (256ULL << 20)
#define RUN_MIN_MEM (4ULL << 20)
#define RUN_MAX_MEM (64ULL << 30)

/* --disk ...,replication=: a disk of a COLO pair set up by hand over QMP. */
enum run_disk_replication { RUN_REPL_NONE, RUN_REPL_PRIMARY, RUN_REPL_SECONDARY };

struct run_disk {
	const char *path;
	int readonly;
	enum run_disk_replication replication;
};

enum run_net_kind { RUN_NET_ABSENT, RUN_NET_NONE, RUN_NET_TAP };

/* lockstep run: one VM; primary/secondary: one half of a COLO pair. */
enum run_role { RUN_ROLE_VM, RUN_ROLE_PRIMARY, RUN_ROLE_SECONDARY };

struct run_args {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	int ndisks;
	struct run_disk disks[RUN_MAX_DISKS];
	enum run_net_kind net;
	char tap[16];
	uint8_t mac[6];
	int mac_set;
	const char *qmp_path;
	const char *console_file; /* NULL: stdio */
	const char *restore;      /* snapshot to start from instead of booting */
	const char *incoming;     /* tcp:HOST:PORT: wait for a live migration instead of booting */
	enum run_role role;
	char peer_uri[300];       /* primary: tcp:HOST:PORT of the secondary */
	char listen_uri[300];     /* secondary: tcp:HOST:PORT to wait on */
	uint32_t checkpoint_delay_ms;
	uint32_t compare_timeout_ms; /* 0: the default */
	uint32_t compare_scan_ms;    /* 0: the default */
	uint32_t compare_queue;      /* 0: the default */
	uint32_t peer_timeout_ms;    /* primary, secondary: 0: the default */
	const char *mismatch_pcap;   /* primary: write mismatching frame pairs here */
	int verbose;
	char *owned[RUN_MAX_DISKS + 1]; /* strings split out of arguments */
};

#define RUN_DEFAULT_CHECKPOINT_DELAY_MS 2000

/*
 * Parses argv (argv[0] is the command: "run", "primary" or "secondary"). On error writes one line naming the bad
 * argument into err and returns -EINVAL; returns 1 for --help.
 */
int run_args_parse(struct run_args *a, int argc, char **argv, char *err, int errlen);
void run_args_free(struct run_args *a);
/* "512M", "2G", "65536" (bytes), "4K"; page multiple. -EINVAL if malformed. */
int parse_size(const char *s, uint64_t *out);
extern const char run_usage[];

#endif
