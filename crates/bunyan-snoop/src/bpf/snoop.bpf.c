// SPDX-License-Identifier: GPL-2.0
/*
 * snoop.bpf.c — the kernel half of `bunyan -p`.
 *
 * One program, attached (through libbpf's USDT support) to every
 * bunyan:log-<level> probe of the snooped processes.  The probe's only
 * argument is a pointer to the record's NUL-terminated JSON text in the
 * target's memory.  The program copies the text into a per-CPU scratch
 * buffer, then into the `records` ring buffer, which user space drains.
 *
 * The target is never blocked: if the ring buffer has no room (the reader
 * fell behind) the record is dropped and counted in `dropped_full`; a record
 * longer than MAX_RECORD - 2 bytes, or one that cannot be read, is counted in
 * `dropped_other`.  Wake-ups are batched: the reader is only woken when a
 * quarter of the ring is filled, otherwise it polls on a short timer, so a
 * busy target does not pay for a wake-up per record.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

/* Largest copy per record, NUL included (the per-CPU array value limit). */
#define MAX_RECORD 32768
/* Ring buffer size. */
#define RING_BYTES (16 << 20)
/* bpf_ringbuf_query() flag: bytes not yet consumed (uapi/linux/bpf.h). */
#define BPF_RB_AVAIL_DATA 0

struct scratch {
	char data[MAX_RECORD];
};

/* Where a record is assembled before it goes to the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Records for user space: the JSON text, without the NUL. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} records SEC(".maps");

/* Records lost because the ring buffer was full. */
u64 dropped_full = 0;
/* Records lost because they were too long or unreadable. */
u64 dropped_other = 0;

SEC("usdt")
int BPF_USDT(log_record, void *json)
{
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;

	/* n counts the NUL; n == MAX_RECORD means the text was cut. */
	long n = bpf_probe_read_user_str(s->data, sizeof(s->data), json);
	if (n <= 1 || n >= MAX_RECORD) {
		if (n != 1)
			__sync_fetch_and_add(&dropped_other, 1);
		return 0;
	}

	/* Wake the reader only when the ring is filling up. */
	u64 avail = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
	u64 flags = avail > RING_BYTES / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_output(&records, s->data, n - 1, flags))
		__sync_fetch_and_add(&dropped_full, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
