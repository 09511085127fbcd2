/*
 * uv-work.c — a small C program that uses libuv as a shared library
 * (libuv.so from Debian's libuv1-dev) and runs work on libuv's thread pool
 * with uv_queue_work: the "any process with libuv, not only node" case of
 * `prodtrace latency`.
 *
 * Build:  cc -O2 -o uv-work examples/c/uv-work.c -luv
 * Usage:  uv-work [HASH_COUNT [SLEEP_COUNT [STAT_COUNT]]]   (defaults: 2000 500 0)
 *
 * Queues HASH_COUNT `hash_work` items (CPU: hashes a 64 KiB buffer) and
 * SLEEP_COUNT `sleep_work` items (sleeps 200 µs), at most 4 in flight, each
 * submitted by `submit_next`, and runs STAT_COUNT asynchronous uv_fs_stat
 * calls one after the other (libuv's own thread-pool requests), then
 * prints one JSON line with the number of completed items of each kind:
 * {"uv_work":{"hash_work":N,"sleep_work":M,"fs_stat":K}}.
 * With UV_WORK_WAIT=stdin it first prints "ready PID" and waits for a line
 * on stdin, so a tracer can attach before the work starts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define IN_FLIGHT 4
#define BUF_SIZE (64 * 1024)

static long hash_left, sleep_left;
static long hash_done, sleep_done;

struct job {
	uv_work_t req;
	uint64_t result;
};

/* Thread-pool work: FNV-1a over a buffer. */
static void hash_work(uv_work_t *req)
{
	static unsigned char buf[BUF_SIZE];
	struct job *job = (struct job *)req;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < BUF_SIZE; i++)
		h = (h ^ (buf[i] + i)) * 1099511628211ULL;
	job->result = h;
}

/* Thread-pool work: a short blocking call. */
static void sleep_work(uv_work_t *req)
{
	struct timespec ts = { 0, 200 * 1000 };
	(void)req;
	nanosleep(&ts, NULL);
}

static void after_work(uv_work_t *req, int status);

/* Queues the next item, if any; returns 0 when nothing is left. */
static int submit_next(uv_loop_t *loop)
{
	uv_work_cb cb;
	if (hash_left > 0) {
		hash_left--;
		cb = hash_work;
	} else if (sleep_left > 0) {
		sleep_left--;
		cb = sleep_work;
	} else {
		return 0;
	}
	struct job *job = calloc(1, sizeof(*job));
	if (!job || uv_queue_work(loop, &job->req, cb, after_work) != 0) {
		fprintf(stderr, "uv-work: cannot queue work\n");
		exit(1);
	}
	return 1;
}

static void after_work(uv_work_t *req, int status)
{
	if (status == 0) {
		if (req->work_cb == hash_work)
			hash_done++;
		else
			sleep_done++;
	}
	uv_loop_t *loop = req->loop;
	free(req);
	submit_next(loop);
}

static long stat_left, stat_done;
static uv_fs_t stat_req;

/* Starts the next uv_fs_stat, if any. */
static void stat_next(uv_loop_t *loop);

static void after_stat(uv_fs_t *req)
{
	if (req->result == 0)
		stat_done++;
	uv_fs_req_cleanup(req);
	stat_next(req->loop);
}

static void stat_next(uv_loop_t *loop)
{
	if (stat_left <= 0)
		return;
	stat_left--;
	if (uv_fs_stat(loop, &stat_req, "/", after_stat) != 0) {
		fprintf(stderr, "uv-work: cannot start uv_fs_stat\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	hash_left = argc > 1 ? atol(argv[1]) : 2000;
	sleep_left = argc > 2 ? atol(argv[2]) : 500;
	stat_left = argc > 3 ? atol(argv[3]) : 0;
	const char *wait = getenv("UV_WORK_WAIT");
	if (wait && strcmp(wait, "stdin") == 0) {
		char line[64];
		printf("ready %ld\n", (long)uv_os_getpid());
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return 1;
	}
	uv_loop_t *loop = uv_default_loop();
	for (int i = 0; i < IN_FLIGHT; i++)
		submit_next(loop);
	stat_next(loop);
	uv_run(loop, UV_RUN_DEFAULT);
	printf("{\"uv_work\":{\"hash_work\":%ld,\"sleep_work\":%ld,\"fs_stat\":%ld}}\n", hash_done, sleep_done,
	       stat_done);
	return 0;
}
