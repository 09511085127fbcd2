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
 * Each ring record is a u32 length, then that many bytes of JSON.  Records
 * up to SCRATCH_TEXT - 1 bytes are assembled in a per-CPU buffer and copied
 * at their exact size; longer ones (rare: records with big stacks or
 * payloads) are read straight into a MAX_LONG reservation in the ring, so
 * records up to MAX_LONG - 1 bytes arrive whole.
 *
 * The target is never blocked.  What is lost is counted apart, so that the
 * reader can say why: `dropped_full` (the ring had no room: the reader fell
 * behind), `too_long` (MAX_LONG - 1 bytes or more), `unreadable` (the text
 * could not be read from the target's memory).  Wake-ups are batched: the
 * reader is only woken when a quarter of the ring is filled, otherwise it
 * polls on a short timer, so a busy target does not pay for a wake-up per
 * record.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

/* Per-CPU buffer: a u32 length and the text (the per-CPU value limit is 32 KiB). */
#define SCRATCH_TEXT (32768 - 4)
/* Longest copy of a long record, NUL included. */
#define MAX_LONG (1 << 20)
/* Ring buffer size. */
#define RING_BYTES (16 << 20)
/* bpf_ringbuf_query() flag: bytes not yet consumed (uapi/linux/bpf.h). */
#define BPF_RB_AVAIL_DATA 0

struct scratch {
	u32 len;
	char data[SCRATCH_TEXT];
};

/* Where a record is assembled before it goes to the ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Records for user space: u32 length, then the JSON text (no NUL). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} records SEC(".maps");

/* Records lost because the ring buffer was full. */
u64 dropped_full = 0;
/* Records of MAX_LONG - 1 bytes or more. */
u64 too_long = 0;
/* Records whose text could not be read. */
u64 unreadable = 0;

/* Wake the reader only when the ring is filling up. */
static __always_inline u64 wakeup_flags(void)
{
	u64 avail = bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA);
	return avail > RING_BYTES / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* A record too long for the scratch buffer: read it into the ring. */
static __always_inline void long_record(void *json)
{
	char *r = bpf_ringbuf_reserve(&records, 4 + MAX_LONG, 0);
	if (!r) {
		__sync_fetch_and_add(&dropped_full, 1);
		return;
	}
	/* n counts the NUL; n == MAX_LONG means the text was cut. */
	long n = bpf_probe_read_user_str(r + 4, MAX_LONG, json);
	if (n <= 1 || n >= MAX_LONG) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		if (n >= MAX_LONG)
			__sync_fetch_and_add(&too_long, 1);
		else
			__sync_fetch_and_add(&unreadable, 1);
		return;
	}
	*(u32 *)r = n - 1;
	bpf_ringbuf_submit(r, wakeup_flags());
}

SEC("usdt")
int BPF_USDT(log_record, void *json)
{
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;

	/* n counts the NUL; n == SCRATCH_TEXT means the text was cut. */
	long n = bpf_probe_read_user_str(s->data, sizeof(s->data), json);
	if (n == 1)
		return 0; /* empty */
	if (n <= 0) {
		__sync_fetch_and_add(&unreadable, 1);
		return 0;
	}
	if (n >= SCRATCH_TEXT) {
		long_record(json);
		return 0;
	}
	s->len = n - 1;
	if (bpf_ringbuf_output(&records, s, 4 + n - 1, wakeup_flags()))
		__sync_fetch_and_add(&dropped_full, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
