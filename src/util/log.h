/* Logging: one line per message on stderr, prefixed with "lockstep: ". */
#ifndef LOCKSTEP_UTIL_LOG_H
#define LOCKSTEP_UTIL_LOG_H

#include <stdarg.h>

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Always printed: what a user waits for (progress of a long step). */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only with --verbose. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_verbose(int verbose);

#endif
