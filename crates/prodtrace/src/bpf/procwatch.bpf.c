// SPDX-License-Identifier: GPL-2.0
/*
 * procwatch.bpf.c — tells `prodtrace latency --serve` when a process it
 * may want starts or a process it traces ends (loader: latency/procwatch.rs).
 *
 *   raw_tp/sched_process_exec: a process finished execve().  Sent when its
 *       new name (comm, the file name, 15 bytes at most) is one of `comms`
 *       (--comm NAME), or when its PID is in `pids` (a traced process that
 *       replaced its program: its probes are gone with its old memory).
 *   raw_tp/sched_process_exit: a thread exits.  Sent when it is the main
 *       thread (PID == TGID) of a process in `pids`.
 *
 * Both are rare events (a few per second on a busy host), filtered in the
 * kernel, so that prodtrace never polls /proc to find processes.  Raw
 * tracepoints need no tracefs and read nothing from their arguments: the
 * running task is the one exec'ing or exiting.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define EV_EXEC 1
#define EV_EXIT 2

struct proc_event {
	u32 pid;
	u32 what;	/* EV_EXEC or EV_EXIT */
	char comm[16];
};

/* Process names (as comm: NUL-padded, 15 bytes at most) to pick up. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[16]);
	__type(value, u8);
} comms SEC(".maps");

/* Processes being traced (user space adds and removes them). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);
	__type(value, u8);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} proc_events SEC(".maps");

/* Counter user space reports: events dropped because the ring was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} proc_lost SEC(".maps");

static __always_inline void send(u32 pid, u32 what, const char *comm)
{
	struct proc_event *e = bpf_ringbuf_reserve(&proc_events, sizeof(*e), 0);
	u32 zero = 0;

	if (!e) {
		u64 *c = bpf_map_lookup_elem(&proc_lost, &zero);
		if (c)
			__sync_fetch_and_add(c, 1);
		return;
	}
	e->pid = pid;
	e->what = what;
	__builtin_memcpy(e->comm, comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

SEC("raw_tp/sched_process_exec")
int on_exec(void *ctx)
{
	char comm[16] = {};
	u32 pid = bpf_get_current_pid_tgid() >> 32;

	bpf_get_current_comm(comm, sizeof(comm));
	if (bpf_map_lookup_elem(&comms, comm) || bpf_map_lookup_elem(&pids, &pid))
		send(pid, EV_EXEC, comm);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int on_exit(void *ctx)
{
	char comm[16] = {};
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;

	if ((u32)id != pid || !bpf_map_lookup_elem(&pids, &pid))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	send(pid, EV_EXIT, comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
