/* `lockstep run` argument parsing: every bad input names the argument. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cli/run_args.h"
#include "net/tap.h"

#define ARGV(...) ((char *[]){ "run", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "run", __VA_ARGS__ }) / sizeof(char *)))

static int parse(struct run_args *a, int argc, char **argv, char *err)
{
	return run_args_parse(a, argc, argv, err, 256);
}

static void expect_error(int argc, char **argv, const char *needle)
{
	struct run_args a;
	char err[256] = "";

	assert_int_equal(parse(&a, argc, argv, err), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
	run_args_free(&a);
}

static void test_full_valid_command(void **state)
{
	struct run_args a;
	char err[256];
	char **argv = ARGV("--kernel", "k.elf", "--initrd", "i.img", "--cmdline", "app=net",
			   "--mem", "512M", "--disk", "d.img,readonly", "--disk", "e.img",
			   "--net", "tap=tap0,mac=52:54:00:aa:bb:cc", "--qmp", "/tmp/q.sock",
			   "--console", "file:/tmp/c.log");

	(void)state;
	assert_int_equal(parse(&a, 19, argv, err), 0);
	assert_string_equal(a.kernel, "k.elf");
	assert_string_equal(a.initrd, "i.img");
	assert_string_equal(a.cmdline, "app=net");
	assert_int_equal(a.mem_size, 512ULL << 20);
	assert_int_equal(a.ndisks, 2);
	assert_string_equal(a.disks[0].path, "d.img");
	assert_true(a.disks[0].readonly);
	assert_false(a.disks[1].readonly);
	assert_int_equal(a.net, RUN_NET_TAP);
	assert_string_equal(a.tap, "tap0");
	assert_true(a.mac_set);
	assert_memory_equal(a.mac, ((uint8_t[]){ 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc }), 6);
	assert_string_equal(a.qmp_path, "/tmp/q.sock");
	assert_string_equal(a.console_file, "/tmp/c.log");
	run_args_free(&a);
}

static void test_disk_replication_option(void **state)
{
	struct run_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse(&a, ARGC("--incoming", "tcp:0:1", "--disk", "s.img,replication=secondary", "--disk",
					"p.img,replication=primary", "--disk", "r.img,readonly"),
			       ARGV("--incoming", "tcp:0:1", "--disk", "s.img,replication=secondary", "--disk",
				    "p.img,replication=primary", "--disk", "r.img,readonly"), err), 0);
	assert_string_equal(a.disks[0].path, "s.img");
	assert_int_equal(a.disks[0].replication, RUN_REPL_SECONDARY);
	assert_int_equal(a.disks[1].replication, RUN_REPL_PRIMARY);
	assert_int_equal(a.disks[2].replication, RUN_REPL_NONE);
	assert_true(a.disks[2].readonly);
	run_args_free(&a);
	expect_error(ARGC("--kernel", "k", "--disk", "d.img,replication=both"),
		     ARGV("--kernel", "k", "--disk", "d.img,replication=both"), "unknown option 'replication=both'");
	expect_error(ARGC("--kernel", "k", "--disk", "d.img,readonly,replication=primary"),
		     ARGV("--kernel", "k", "--disk", "d.img,readonly,replication=primary"), "read-only disk is not replicated");
	{
		char *pargv[] = { "primary", "--kernel", "k", "--peer", "h:1", "--disk", "d.img,replication=primary", NULL };

		assert_int_equal(parse(&a, 7, pargv, err), -EINVAL);
		assert_non_null(strstr(err, "replicate every writable disk themselves"));
		run_args_free(&a);
	}
}

static void test_defaults(void **state)
{
	struct run_args a;
	char err[256];

	(void)state;
	assert_int_equal(parse(&a, ARGC("--kernel", "k"), ARGV("--kernel", "k"), err), 0);
	assert_int_equal(a.mem_size, RUN_DEFAULT_MEM);
	assert_int_equal(a.net, RUN_NET_ABSENT);
	assert_null(a.console_file);
	run_args_free(&a);
}

static void test_bad_arguments_are_named(void **state)
{
	(void)state;
	expect_error(ARGC("--mem", "1G"), ARGV("--mem", "1G"), "--kernel");
	expect_error(ARGC("--kernel", "k", "--mem", "lots"), ARGV("--kernel", "k", "--mem", "lots"), "--mem");
	expect_error(ARGC("--kernel", "k", "--mem", "1M"), ARGV("--kernel", "k", "--mem", "1M"), "between");
	expect_error(ARGC("--kernel", "k", "--mem", "100G"), ARGV("--kernel", "k", "--mem", "100G"), "between");
	expect_error(ARGC("--kernel", "k", "--mem", "5000"), ARGV("--kernel", "k", "--mem", "5000"), "4 KiB");
	expect_error(ARGC("--kernel", "k", "--net", "tap=t,mac=zz:00:00:00:00:00"),
		     ARGV("--kernel", "k", "--net", "tap=t,mac=zz:00:00:00:00:00"), "MAC");
	expect_error(ARGC("--kernel", "k", "--net", "tap=t,mac=01:00:00:00:00:00"),
		     ARGV("--kernel", "k", "--net", "tap=t,mac=01:00:00:00:00:00"), "MAC");
	expect_error(ARGC("--kernel", "k", "--net", "user"), ARGV("--kernel", "k", "--net", "user"), "--net");
	expect_error(ARGC("--kernel", "k", "--net", "tap=waytoolonginterfacename"),
		     ARGV("--kernel", "k", "--net", "tap=waytoolonginterfacename"), "interface name");
	expect_error(ARGC("--kernel", "k", "--disk", "d.img,rw"), ARGV("--kernel", "k", "--disk", "d.img,rw"), "--disk");
	expect_error(ARGC("--kernel", "k", "--console", "tty"), ARGV("--kernel", "k", "--console", "tty"), "--console");
	expect_error(ARGC("--kernel", "k", "--bogus"), ARGV("--kernel", "k", "--bogus"), "--bogus");
	expect_error(ARGC("--kernel"), ARGV("--kernel"), "--kernel");
	expect_error(ARGC("--kernel", "k", "extra"), ARGV("--kernel", "k", "extra"), "extra");
}

static void test_parse_size(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("2G", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(parse_size("256MB", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("12X", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(parse_size("17179869184G", &v), -EINVAL); /* overflows 64 bits */
}

static void test_parse_mac(void **state)
{
	uint8_t mac[6];

	(void)state;
	assert_int_equal(net_parse_mac("02:00:00:00:00:01", mac), 0);
	assert_int_equal(mac[5], 1);
	assert_int_equal(net_parse_mac("02:00:00:00:00", mac), -EINVAL);
	assert_int_equal(net_parse_mac("02:00:00:00:00:011", mac), -EINVAL);
	assert_int_equal(net_parse_mac("02-00-00-00-00-01", mac), -EINVAL);
	assert_int_equal(net_parse_mac("0x:00:00:00:00:01", mac), -EINVAL);
	assert_int_equal(net_parse_mac("03:00:00:00:00:01", mac), -EINVAL); /* multicast */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_valid_command), cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_arguments_are_named), cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_parse_mac), cmocka_unit_test(test_disk_replication_option),
	};

	return cmocka_run_group_tests_name("run_args", tests, NULL, NULL);
}
