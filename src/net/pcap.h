/*
 * Writer for classic libpcap capture files (magic 0xa1b2c3d4, microsecond
 * timestamps, LINKTYPE_ETHERNET) that tcpdump and Wireshark open: the
 * comparator's mismatch diagnosis file. A write error (a full disk) is
 * returned, never fatal, and never leaves half a record in the file.
 */
#ifndef LOCKSTEP_NET_PCAP_H
#define LOCKSTEP_NET_PCAP_H

#include <stddef.h>
#include <stdint.h>

#define PCAP_SNAPLEN 262144

struct pcap_writer;

/* Creates (truncates) path and writes the file header. NULL with *err = -errno
 * on failure (the project's negative-errno convention). */
struct pcap_writer *pcap_open(const char *path, int *err);
/* Same on an open file descriptor, which the writer then owns. */
struct pcap_writer *pcap_open_fd(int fd, int *err);
/* Appends one frame (cut to PCAP_SNAPLEN) stamped ts_us microseconds since
 * the epoch. 0, or -errno (the file keeps only whole records). */
int pcap_write(struct pcap_writer *w, const uint8_t *frame, size_t len, uint64_t ts_us);
/* Closes the file; 0 or -errno from close. NULL is accepted. */
int pcap_close(struct pcap_writer *w);

#endif
