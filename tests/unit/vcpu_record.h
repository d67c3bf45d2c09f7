/* Reading the vCPU record in tests: blank the MSRs that count time, so two saves compare. */
#ifndef TESTS_VCPU_RECORD_H
#define TESTS_VCPU_RECORD_H

#include <stdint.h>
#include <string.h>

#include "util/sbuf.h"

/* The TSC everywhere; KVM's Hyper-V reference time count and VP runtime where KVM
 * lists them (as it does inside our virtual test hosts). */
static inline int vcpu_record_is_clock_msr(uint32_t index)
{
	return index == 0x10 || index == 0x40000020 || index == 0x40000010;
}

/* Item 8 of the record holds the MSRs: struct kvm_msrs, then entries {index, reserved, data}. */
static inline void vcpu_record_blank_clocks(struct sbuf *rec)
{
	size_t pos = 4; /* after the version */

	while (pos + 8 <= rec->len) {
		uint32_t tag, len;

		memcpy(&tag, rec->data + pos, 4);
		memcpy(&len, rec->data + pos + 4, 4);
		pos += 8;
		if (tag == 8) {
			for (size_t e = pos + 8; e + 16 <= pos + len; e += 16) {
				uint32_t index;

				memcpy(&index, rec->data + e, 4);
				if (vcpu_record_is_clock_msr(index))
					memset(rec->data + e + 8, 0, 8);
			}
		}
		pos += len;
	}
}

#endif
