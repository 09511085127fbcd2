// SPDX-License-Identifier: GPL-2.0
/*
 * latency.bpf.c — latency of the asynchronous operations a process runs on
 * libuv's thread pool (uv_queue_work), for `prodtrace latency`.
 *
 * Life of one operation and the probes on it (user space picks the exact
 * instruction of each probe so that the kernel emulates it instead of
 * single-stepping it, see latency/sites.rs):
 *
 *   event loop: uv_queue_work(loop, req, work_cb, after_work_cb)  -> submit
 *   worker:     worker loop, just before it calls w->work(w)       -> run_start
 *               ... just after w->work(w) returned                 -> run_end
 *   event loop: uv__queue_done(&req->work_req) calls after_work_cb -> done
 *
 * Only `submit` and `done` are attached by default (two probe hits per
 * operation); `run_start`/`run_end` are attached for --breakdown (or, if
 * the worker loop is not found, `run_start` on uv__queue_work's entry and
 * `run_return` on its return).  They are uprobe_multi links bound to the
 * target process: the breakpoints exist in its memory only, and, unlike
 * PID-bound perf-event uprobes, they add no cost to the target's context
 * switches.  Every operation is keyed by the address of its `struct
 * uv__work` (req->work_req), which is what the worker and completion
 * functions receive.
 *
 * libuv's own requests (fs, getaddrinfo, ...) start in uv__work_submit
 * (`submit_internal`) and end in their done function (uv__fs_done...),
 * which runs the same `done` program.
 *
 * The "kind" of an operation is decided at submit time:
 *   KIND_NAPI  — N-API async work: the add-on's execute callback given to
 *                napi_create_async_work (read from node's uvimpl::Work);
 *   KIND_TPW   — another node::ThreadPoolWork (zlib, crypto...): its vtable
 *                pointer, which user space turns into the class name;
 *   KIND_WORK_CB — anything else (NAN add-ons, C programs): the work_cb,
 *                or for libuv's own requests the work function;
 *   KIND_FS    — an fs request: its uv_fs_type.
 * With --by caller the first return address outside node/libuv is recorded
 * too (the seed's `ucaller` definition).
 *
 * Operations in flight are kept in `slots` (or `starts` on a collision);
 * completed operations go to user space through a ring buffer; user space
 * builds the histograms.  Costs per operation, measured with
 * kernel.bpf_stats_enabled on the sqlite demo: submit ~0.33 µs (most of
 * it the one bpf_probe_read_user), done ~0.26 µs (most of it the ring
 * buffer), besides the two probe hits themselves.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define KIND_NAPI 1
#define KIND_TPW 2
#define KIND_WORK_CB 3
#define KIND_FS 4

/* offsetof(uv_work_t, work_req): uv.h's public, stable layout on x86_64. */
#define WORK_REQ_OFF 0x58
/* User stack frames examined to find the caller (--by caller). */
#define MAX_FRAMES 32

/* ---- configuration, set by user space before the program is loaded ---- */
const volatile u32 target_tgid = 0;
/* node::ThreadPoolWork::ScheduleWork()'s work lambda: work_cb of every
 * ThreadPoolWork (N-API, zlib, crypto); 0 when the target has none. */
const volatile u64 tpw_work_cb = 0;
/* offsetof(ThreadPoolWork, work_req_): where the object (and its vtable
 * pointer) starts, relative to req. */
const volatile u64 tpw_req_off = 0;
/* [lo, hi) of the vtable of N-API's uvimpl::Work, and the offset from req
 * to its `_execute` member; napi_exec_off == 0 means unknown. */
const volatile u64 napi_vtable_lo = 0;
const volatile u64 napi_vtable_hi = 0;
const volatile s64 napi_exec_off = 0;
/* libuv's own requests (fs, getaddrinfo...) go through uv__work_submit, not
 * uv_queue_work.  uv__queue_work: the work function of uv_queue_work's
 * requests (already recorded by `submit` if uv_queue_work calls
 * uv__work_submit); uv__fs_work and the offset of `work_req` in uv_fs_t,
 * to classify fs requests by their uv_fs_type.  Both functions are given
 * relative to the probed instruction in uv__work_submit, whose run-time
 * address bpf_get_func_ip() returns, so they are known even before the
 * library is loaded (fs_work_rel == 0: unknown). */
const volatile s64 queue_work_rel = 0;
const volatile s64 fs_work_rel = 0;
const volatile u64 fs_req_off = 0;
/* --by caller: skip return addresses inside these ranges (node's and
 * libuv's code) when looking for the caller. */
const volatile bool by_caller = false;
const volatile u64 skip1_lo = 0, skip1_hi = 0;
const volatile u64 skip2_lo = 0, skip2_hi = 0;

/* One operation in flight. */
struct start {
	u64 t_submit;
	u64 t_run;	/* worker started it (--breakdown), 0 if not seen */
	u64 t_ran;	/* worker finished it (--breakdown), 0 if not seen */
	u64 kind;
	u64 caller;
	u32 kind_type;
	u32 pad;
};

/* A completed operation, sent to user space. */
struct event {
	u64 kind;
	u64 caller;
	u64 t_submit;
	u64 t_run;
	u64 t_ran;
	u64 t_done;
	u32 kind_type;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);		/* &req->work_req */
	__type(value, struct start);
} starts SEC(".maps");

/* Operations in flight, first choice: a direct-mapped table indexed by a
 * hash of the key.  An array lookup is a few instructions (the verifier
 * inlines it), where a hash-map update plus delete costs several hundred
 * ns per operation; `starts` only takes the rare operation whose slot is
 * busy. */
#define NSLOTS 4096
struct slot {
	u64 key;	/* 0 when free */
	struct start s;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSLOTS);
	__type(key, u32);
	__type(value, struct slot);
} slots SEC(".maps");


/* Worker thread id -> the operation it is running (--breakdown through
 * uv__queue_work's entry and return). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u64);
} running SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Notifications that the target loaded libraries (see libs_changed). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} maps_changed SEC(".maps");

/* Counters user space reports: [0] events lost (ring buffer full),
 * [1] operations not recorded because `starts` was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline struct slot *slot_of(u64 key)
{
	u32 idx = (u32)(((key >> 3) * 0x9E3779B97F4A7C15ULL) >> 52) & (NSLOTS - 1);

	return bpf_map_lookup_elem(&slots, &idx);
}

/* Stores the start of operation `key`. */
static __always_inline void put_start(u64 key, struct start *s)
{
	struct slot *sl = slot_of(key);

	if (sl && (sl->key == key || __sync_val_compare_and_swap(&sl->key, 0, key) == 0)) {
		sl->s = *s;
		return;
	}
	if (bpf_map_update_elem(&starts, &key, s, BPF_ANY))
		count(1);
}

/* The start of operation `key`, or NULL. */
static __always_inline struct start *get_start(u64 key)
{
	struct slot *sl = slot_of(key);

	if (sl && sl->key == key)
		return &sl->s;
	return bpf_map_lookup_elem(&starts, &key);
}

/* Forgets operation `key` (its start was read through get_start). */
static __always_inline void drop_start(u64 key, struct start *s)
{
	struct slot *sl = slot_of(key);

	if (sl && s == &sl->s) {
		/* Everything read from the slot is read before it is freed. */
		asm volatile("" ::: "memory");
		sl->key = 0;
	}
	else
		bpf_map_delete_elem(&starts, &key);
}

static __always_inline bool is_target(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static __always_inline bool skipped(u64 addr)
{
	return (addr >= skip1_lo && addr < skip1_hi) || (addr >= skip2_lo && addr < skip2_hi);
}

/* The first return address outside node and libuv, 0 if none. */
static __always_inline u64 find_caller(struct pt_regs *ctx)
{
	u64 stack[MAX_FRAMES] = {};
	u64 ret = 0, found = 0;

	/* The probe sits before uv_queue_work's prologue, so its immediate
	 * caller is the return address at the top of the stack; the frame
	 * pointer walk then starts at the caller's caller (frame 1). */
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx)) == 0 && ret && !skipped(ret))
		return ret;
	/* Frames past the end of the walk stay 0, which ends the search. */
	if (bpf_get_stack(ctx, stack, sizeof(stack), BPF_F_USER_STACK) <= 0)
		return 0;
	for (int i = 1; i < MAX_FRAMES; i++) {
		u64 addr = stack[i];
		if (!addr)
			break;
		if (!skipped(addr)) {
			found = addr;
			break;
		}
	}
	return found;
}

/* The words of the request an operation's kind is read from (node's
 * ThreadPoolWork vtable pointer, N-API's execute callback) lie in
 * [req + win_lo, req + win_lo + win_len); user space sets the window from
 * the offsets above.  One bpf_probe_read_user of the window costs about
 * what one of a single word does (~150 ns here), so it is read at once. */
#define WIN_MAX 256
const volatile s64 win_lo = 0;
const volatile u32 win_len = 0;

struct window {
	u8 b[WIN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct window);
} scratch SEC(".maps");

/* The word at req + off, from a window read by read_window; 0 outside it. */
static __always_inline u64 word_at(struct window *w, s64 off)
{
	s64 i = off - win_lo;

	if (i < 0 || i > WIN_MAX - 8)
		return 0;
	return *(u64 *)(w->b + i);
}

/* Reads the window of `req`; NULL if it cannot be read. */
static __always_inline struct window *read_window(u64 req)
{
	u32 zero = 0, len = win_len;
	struct window *w = bpf_map_lookup_elem(&scratch, &zero);

	if (!w || len > WIN_MAX)
		return NULL;
	if (bpf_probe_read_user(w->b, len, (void *)(req + win_lo)))
		return NULL;
	return w;
}

/* uv_queue_work(loop, req, work_cb, after_work_cb): an operation starts. */
SEC("uprobe.multi")
int BPF_UPROBE(submit, void *loop, void *req, u64 work_cb)
{
	struct start s = {};
	u64 key = (u64)req + WORK_REQ_OFF;
	struct window *w;

	if (!is_target())
		return 0;
	s.t_submit = bpf_ktime_get_ns();
	s.kind = work_cb;
	s.kind_type = KIND_WORK_CB;
	if (tpw_work_cb && work_cb == tpw_work_cb && (w = read_window((u64)req))) {
		/* A node::ThreadPoolWork: classify it by its vtable. */
		u64 vptr = word_at(w, -(s64)tpw_req_off);

		if (napi_exec_off && vptr >= napi_vtable_lo && vptr < napi_vtable_hi) {
			s.kind = word_at(w, napi_exec_off);
			s.kind_type = KIND_NAPI;
		} else if (vptr) {
			s.kind = vptr;
			s.kind_type = KIND_TPW;
		}
	}
	if (by_caller)
		s.caller = find_caller(ctx);
	put_start(key, &s);
	return 0;
}

/* The callee-saved register number `n` (0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14,
 * 5 r15).  Every register is loaded at a constant offset (the verifier
 * rejects a computed context offset), then one is picked. */
static __always_inline u64 saved_reg(struct pt_regs *ctx, u64 n)
{
	u64 rbx = ctx->bx, rbp = ctx->bp, r12 = ctx->r12, r13 = ctx->r13, r14 = ctx->r14, r15 = ctx->r15;

	asm volatile("" : "+r"(rbx), "+r"(rbp), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15));
	switch (n) {
	case 0: return rbx;
	case 1: return rbp;
	case 2: return r12;
	case 3: return r13;
	case 4: return r14;
	case 5: return r15;
	}
	return 0;
}

/* uv__work_submit(loop, w, kind, work, done): one of libuv's own requests
 * (fs, getaddrinfo, getnameinfo, random) starts.  Its kind is the work
 * function, or for fs requests the uv_fs_type (offsetof(uv_fs_t, fs_type)
 * is 0x40, after the public request fields). */
SEC("uprobe.multi")
int BPF_UPROBE(submit_internal, void *loop, u64 w, int kind, u64 work)
{
	struct start s = {};

	u64 ip = bpf_get_func_ip(ctx);

	if (!is_target() || work == ip + queue_work_rel)
		return 0;
	s.t_submit = bpf_ktime_get_ns();
	s.kind = work;
	s.kind_type = KIND_WORK_CB;
	if (fs_work_rel && work == ip + fs_work_rel) {
		int fs_type = 0;
		bpf_probe_read_user(&fs_type, sizeof(fs_type), (void *)(w - fs_req_off + 0x40));
		s.kind = (u64)(s64)fs_type;
		s.kind_type = KIND_FS;
	}
	if (by_caller)
		s.caller = find_caller(ctx);
	put_start(w, &s);
	return 0;
}

/* Where a probe on a worker finds the operation, from its cookie: 0 for
 * the first argument (a probe on uv__queue_work's entry), else
 * COOKIE_REG | register number << 32 | (u32)displacement (see saved_reg). */
#define COOKIE_REG (1ULL << 63)

static __always_inline u64 worker_key(struct pt_regs *ctx)
{
	u64 cookie = bpf_get_attach_cookie(ctx);

	if (!(cookie & COOKIE_REG))
		return PT_REGS_PARM1(ctx);
	return saved_reg(ctx, (cookie >> 32) & 0xff) + (s64)(s32)cookie;
}

/* A worker thread starts running an operation (--breakdown): in libuv's
 * worker loop just before it calls `w->work(w)`, or at the entry of
 * uv__queue_work when that call could not be located. */
SEC("uprobe.multi")
int run_start(struct pt_regs *ctx)
{
	struct start *s;
	u64 w = worker_key(ctx);
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (!is_target())
		return 0;
	s = get_start(w);
	if (!s)
		return 0;
	s->t_run = bpf_ktime_get_ns();
	if (!(bpf_get_attach_cookie(ctx) & COOKIE_REG))
		bpf_map_update_elem(&running, &tid, &w, BPF_ANY);
	return 0;
}

/* The worker finished running an operation (--breakdown): just after
 * `w->work(w)` returned, or on uv__queue_work's return (a uretprobe, which
 * knows the operation from `running`). */
SEC("uprobe.multi")
int run_end(struct pt_regs *ctx)
{
	struct start *s = get_start(worker_key(ctx));

	if (is_target() && s)
		s->t_ran = bpf_ktime_get_ns();
	return 0;
}

SEC("uretprobe.multi")
int BPF_URETPROBE(run_return)
{
	struct start *s;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *w;

	if (!is_target())
		return 0;
	w = bpf_map_lookup_elem(&running, &tid);
	if (!w)
		return 0;
	s = get_start(*w);
	if (s)
		s->t_ran = bpf_ktime_get_ns();
	bpf_map_delete_elem(&running, &tid);
	return 0;
}

/* ---- --serve: histograms kept in the kernel (loader: latency/serve.rs) ----
 * With `aggregate` set, `done` adds each operation to `hists` instead of
 * sending it through the ring buffer, as cloudflare's ebpf_exporter does:
 * no event and no user-space work per operation; user space reads the map
 * when it is scraped.  One entry per kind (and phase, with --breakdown);
 * user space sizes the map to its per-process cap on kinds, so an
 * operation of one kind too many is counted in hist_lost[0], and the
 * first operation of each such kind in hist_lost[1] (kinds dropped). */
const volatile bool aggregate = false;

#define HIST_SLOTS 65
struct hist_key {
	u64 kind;
	u64 caller;	/* --by caller, else 0 */
	u32 kind_type;
	u32 phase;	/* 0 total, 1 queue wait, 2 run, 3 completion delay */
};

/* slots[i]: operations that took (2^(i-1), 2^i] ns (slots[0]: 0 or 1 ns),
 * the buckets of Prometheus's `le`. */
struct hist {
	u64 sum_ns;
	u64 slots[HIST_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, 1);		/* BPF_F_NO_PREALLOC: memory as kinds appear */
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/* A zeroed `struct hist` (too large for the stack) to create entries from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct hist);
} hist_zero SEC(".maps");

/* Kinds refused because `hists` was full (to count each once). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, 1);
	__type(key, struct hist_key);
	__type(value, u8);
} hist_refused SEC(".maps");

/* [0] operations not counted because `hists` was full, [1] kinds refused. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
} hist_lost SEC(".maps");

static __always_inline u32 log2_u64(u64 v)
{
	u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline void hist_count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&hist_lost, &idx);
	if (c)
		__sync_fetch_and_add(c, 1);
}

static __always_inline void hist_add(struct hist_key *k, u64 ns)
{
	struct hist *h = bpf_map_lookup_elem(&hists, k);
	u32 zero = 0, slot;

	if (!h) {
		struct hist *z = bpf_map_lookup_elem(&hist_zero, &zero);
		u8 one = 1;

		if (!z)
			return;
		/* Another CPU may create it first: then the lookup finds it. */
		bpf_map_update_elem(&hists, k, z, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, k);
		if (!h) {
			hist_count(0);
			if (k->phase == 0 && bpf_map_update_elem(&hist_refused, k, &one, BPF_NOEXIST) == 0)
				hist_count(1);
			return;
		}
	}
	slot = ns <= 1 ? 0 : log2_u64(ns - 1) + 1;
	if (slot < HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
}

/* Adds a completed operation to `hists` (and its phases, when seen). */
static __always_inline void aggregate_op(struct start *s, u64 t_done)
{
	struct hist_key k = { .kind = s->kind, .caller = s->caller, .kind_type = s->kind_type };

	hist_add(&k, t_done - s->t_submit);
	if (s->t_run && s->t_ran) {
		k.phase = 1;
		hist_add(&k, s->t_run - s->t_submit);
		k.phase = 2;
		hist_add(&k, s->t_ran - s->t_run);
		k.phase = 3;
		hist_add(&k, t_done - s->t_ran);
	}
}

/* uv__queue_done(&req->work_req, status) on the event loop, just before
 * it calls after_work_cb, or the done function of libuv's own requests
 * (uv__fs_done...): the operation is complete. */
SEC("uprobe.multi")
int BPF_UPROBE(done, u64 w)
{
	struct start *s;
	struct event *e;

	if (!is_target())
		return 0;
	s = get_start(w);
	if (!s)
		return 0;
	if (aggregate) {
		aggregate_op(s, bpf_ktime_get_ns());
		drop_start(w, s);
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->kind = s->kind;
		e->caller = s->caller;
		e->kind_type = s->kind_type;
		e->pad = 0;
		e->t_submit = s->t_submit;
		e->t_run = s->t_run;
		e->t_ran = s->t_ran;
		e->t_done = bpf_ktime_get_ns();
		bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	} else {
		count(0);
	}
	drop_start(w, s);
	return 0;
}

/* ld.so's _dl_debug_state(), the debugger hook it calls whenever the set of
 * loaded libraries changes (at start-up and on dlopen, e.g. a Node add-on):
 * wake user space at once so it re-reads /proc/PID/maps while the process
 * exists, so that kinds can be named even if it exits soon after. */
SEC("uprobe.multi")
int BPF_UPROBE(libs_changed)
{
	u64 now = bpf_ktime_get_ns();

	if (!is_target())
		return 0;
	bpf_ringbuf_output(&maps_changed, &now, sizeof(now), BPF_RB_FORCE_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
