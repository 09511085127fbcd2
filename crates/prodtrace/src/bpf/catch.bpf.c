// SPDX-License-Identifier: GPL-2.0
/*
 * catch.bpf.c — the kernel half of `prodtrace catch`.
 *
 * One program on the raw `sys_exit` tracepoint: it runs in the context of the
 * thread whose system call is returning, after the kernel has computed the
 * return value and before that thread goes back to user space.  When the
 * syscall matches every filter set up by user space (process, comm, syscall
 * number, return value, arguments), it
 *   1. reserves an event in the ring buffer (no room → no action at all),
 *   2. records registers, arguments, the frame-pointer user stack and a raw
 *      copy of the top of the user stack (for DWARF unwinding in user space),
 *   3. sends the requested signal right here — SIGABRT to this thread, or
 *      SIGSTOP to the whole process — so the signal is pending before the
 *      thread returns to user space: it does not run one more instruction,
 *   4. submits the event.
 * A global hit counter makes the program stop matching after `max_hits`
 * events, so with `--count 1` a second thread cannot be signalled too.
 * When it stops processes (--core, --stop) it holds one at a time: a match
 * while user space has not yet followed up the previous stop is counted in
 * `skipped` and not acted on (no event, no signal).
 * prodtrace's own process never matches (it would stop itself).
 *
 * The raw tracepoint needs no tracefs and passes the user registers of the
 * returning thread (args[0]) and the return value (args[1]).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define MAX_FRAMES 127
/* The raw stack copy: page-aligned chunks read one at a time, so a read that
 * runs past the top of the stack mapping loses only whole pages. */
#define PAGE 4096
#define STACK_PAGES 8
#define STACK_COPY (PAGE * STACK_PAGES)
/* Syscall numbers below this are accepted by the number filter. */
#define MAX_NR 1024

#define SIGABRT 6
#define SIGSTOP 19

/* Comparison operators of `--ret OP VALUE` (same numbering in catch/filter.rs). */
enum { OP_NONE, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
/* What to send when a syscall matches (same numbering in catch/mod.rs). */
enum { SEND_NONE, SEND_ABORT_THREAD, SEND_STOP_PROCESS };

/* Only the two fields we need; CO-RE finds them in the running kernel's BTF. */
struct task_struct___catch {
	unsigned int ptrace;      /* non-zero while a debugger traces the thread */
	struct task_struct___catch *group_leader;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

/* event.signal_err when no signal was sent because a debugger traces the
 * thread: the signal would be reported to the debugger, not acted on. */
#define SKIPPED_TRACED 1

/* raw_tp context: the tracepoint's arguments as u64s. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

/* One matching system call, as read by catch/event.rs. */
struct event {
	__u64 boot_ns;            /* bpf_ktime_get_boot_ns() at the return */
	__u32 pid;                /* tgid */
	__u32 tid;
	__s64 nr;                 /* syscall number (orig_ax) */
	__s64 ret;                /* return value (-errno on failure) */
	__u64 args[6];            /* di, si, dx, r10, r8, r9 */
	__u64 ip, sp, bp;         /* user registers at the return */
	__u32 hit;                /* 1-based match number */
	__s32 signal_err;         /* bpf_send_signal*() result (0: sent or none
	                           * asked), or SKIPPED_TRACED */
	__s32 frames_len;         /* bytes in frames[], or a negative error */
	__u32 stack_len;          /* bytes in stack[] */
	char comm[TASK_COMM_LEN];   /* this thread's name */
	char pcomm[TASK_COMM_LEN];  /* the process's name (main thread's comm) */
	__u64 frames[MAX_FRAMES]; /* frame-pointer user stack, innermost first */
	__u8 stack[STACK_COPY];   /* user memory from sp upwards */
};

/* Filters and action, set by user space before loading. */
const volatile __u32 self_tgid = 0;            /* prodtrace itself: never matches */
const volatile __u32 target_tgid = 0;          /* 0: any process */
const volatile bool filter_comm = false;
const volatile char comm[TASK_COMM_LEN] = {};
const volatile bool filter_nr = false;
const volatile __u8 nr_set[MAX_NR] = {};       /* 1 = syscall number wanted */
const volatile __u32 ret_op = OP_NONE;
const volatile __s64 ret_value = 0;
const volatile bool only_failed = false;       /* -4095 <= ret <= -1 */
const volatile __u8 arg_mask = 0;              /* bit i: args[i] must equal arg_values[i] */
const volatile __u64 arg_values[6] = {};
const volatile __u32 send = SEND_NONE;
const volatile __u32 max_hits = 0;             /* 0: unlimited */

/* Counters read by user space: matches acted on, matches dropped (ring
 * full), matches skipped while a stopped process was being followed up. */
__u64 hits = 0;
__u64 dropped = 0;
__u64 skipped = 0;

/* 1 from the match that sends SIGSTOP until user space has resumed (or
 * left stopped) that process and clears it: one process held at a time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);     /* 64 bits: what BPF atomics take without alu32 */
} holding SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

static __always_inline bool comm_equal(const char *a)
{
	for (int i = 0; i < TASK_COMM_LEN; i++) {
		if (a[i] != comm[i])
			return false;
		if (a[i] == 0)
			return true;
	}
	return true;
}

static __always_inline bool ret_matches(__s64 ret)
{
	if (only_failed && !(ret < 0 && ret >= -4095))
		return false;
	switch (ret_op) {
	case OP_EQ: return ret == ret_value;
	case OP_NE: return ret != ret_value;
	case OP_LT: return ret < ret_value;
	case OP_LE: return ret <= ret_value;
	case OP_GT: return ret > ret_value;
	case OP_GE: return ret >= ret_value;
	default: return true;
	}
}

/* Copies the user stack from sp upwards, page by page, into e->stack. */
static __always_inline void copy_stack(struct event *e)
{
	__u64 sp = e->sp;
	__u32 first = PAGE - (sp & (PAGE - 1));     /* up to the next page boundary */

	e->stack_len = 0;
	if (bpf_probe_read_user(e->stack, first & (PAGE * 2 - 1), (void *)sp))
		return;
	e->stack_len = first;
	for (int i = 0; i < STACK_PAGES - 1; i++) {
		__u32 off = e->stack_len;
		if (off > STACK_COPY - PAGE)
			break;
		if (bpf_probe_read_user(&e->stack[off], PAGE, (void *)(sp + off)))
			break;
		e->stack_len = off + PAGE;
	}
}

SEC("raw_tp/sys_exit")
int catch_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct pt_regs regs;
	__s64 ret = (__s64)ctx->args[1];
	char tcomm[TASK_COMM_LEN], pcomm[TASK_COMM_LEN];

	/* Cheapest tests first: this runs at every syscall exit on the machine. */
	if (tgid == self_tgid)
		return 0;
	if (target_tgid && tgid != target_tgid)
		return 0;
	if (!ret_matches(ret))
		return 0;
	struct pt_regs *uregs = (struct pt_regs *)ctx->args[0];
	if (filter_nr) {
		__u64 nr;
		if (bpf_probe_read_kernel(&nr, sizeof(nr), &uregs->orig_ax))
			return 0;
		if (nr >= MAX_NR || !nr_set[nr])
			return 0;
	}
	/* A thread may be named differently from its process (node's
	 * "libuv-worker"): either name matches. */
	bpf_get_current_comm(tcomm, sizeof(tcomm));
	struct task_struct___catch *task = (void *)bpf_get_current_task();
	struct task_struct___catch *leader = BPF_CORE_READ(task, group_leader);
	bpf_core_read(pcomm, sizeof(pcomm), &leader->comm);
	if (filter_comm && !comm_equal(tcomm) && !comm_equal(pcomm))
		return 0;

	if (bpf_probe_read_kernel(&regs, sizeof(regs), uregs))
		return 0;
	__u64 args[6] = { regs.di, regs.si, regs.dx, regs.r10, regs.r8, regs.r9 };
	for (int i = 0; i < 6; i++)
		if ((arg_mask & (1 << i)) && args[i] != arg_values[i])
			return 0;

	/* Already caught enough: act on nothing more (cheap pre-check; the
	 * atomic increment below decides races between threads). */
	if (max_hits && hits >= max_hits)
		return 0;
	/* One held process at a time: take the hold, or count a skip. */
	__u32 zero = 0;
	__u64 *hold = NULL;
	if (send == SEND_STOP_PROCESS) {
		hold = bpf_map_lookup_elem(&holding, &zero);
		if (!hold)
			return 0;
		if (__sync_val_compare_and_swap(hold, 0, 1) != 0) {
			__sync_fetch_and_add(&skipped, 1);
			return 0;
		}
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		if (hold)
			*hold = 0;
		return 0;
	}
	__u64 hit = __sync_fetch_and_add(&hits, 1) + 1;
	if (max_hits && hit > max_hits) {
		bpf_ringbuf_discard(e, 0);
		if (hold)
			*hold = 0;
		return 0;
	}

	e->boot_ns = bpf_ktime_get_boot_ns();
	e->pid = tgid;
	e->tid = (__u32)pid_tgid;
	e->nr = regs.orig_ax;
	e->ret = ret;
	for (int i = 0; i < 6; i++)
		e->args[i] = args[i];
	e->ip = regs.ip;
	e->sp = regs.sp;
	e->bp = regs.bp;
	e->hit = hit;
	__builtin_memcpy(e->comm, tcomm, TASK_COMM_LEN);
	__builtin_memcpy(e->pcomm, pcomm, TASK_COMM_LEN);
	e->frames_len = bpf_get_stack(ctx, e->frames, sizeof(e->frames), BPF_F_USER_STACK);
	copy_stack(e);

	/* Act before the thread leaves the kernel. */
	e->signal_err = 0;
	if (send != SEND_NONE && BPF_CORE_READ(task, ptrace))
		e->signal_err = SKIPPED_TRACED;
	else if (send == SEND_ABORT_THREAD)
		e->signal_err = bpf_send_signal_thread(SIGABRT);
	else if (send == SEND_STOP_PROCESS)
		e->signal_err = bpf_send_signal(SIGSTOP);

	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
