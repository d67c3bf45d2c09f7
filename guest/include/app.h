/*
 * Workloads selected with app=NAME on the command line. Each app file
 * registers itself with GUEST_APP; nothing central lists them.
 * Parameters come from the same command line: `app=dirty,pages=64,period=10`
 * (commas and spaces both separate key=value items; see cmdline_get).
 */
#ifndef GUEST_APP_H
#define GUEST_APP_H

struct guest_app {
	const char *name;
	/* Returns the exit status; long-running apps never return. */
	int (*main)(void);
};

#define GUEST_APP(app_name, fn)                                                        \
	static const struct guest_app guest_app_##fn                                       \
		__attribute__((used, section(".apps"), aligned(8))) = { app_name, fn }

#endif
