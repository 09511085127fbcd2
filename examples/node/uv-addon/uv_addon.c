/*
 * uv_addon.c — a minimal native Node.js add-on in the NAN style: it queues
 * its work with libuv's uv_queue_work directly (on the loop it gets from
 * napi_get_uv_event_loop) instead of napi_create_async_work.  `prodtrace
 * latency` names such work by its work callback (`checksum_work`), and with
 * `--by caller` by the add-on function that queued it (`checksum`).
 *
 * Build (no node-gyp needed; node's headers ship with Debian's nodejs):
 *   cc -O2 -shared -fPIC -I/usr/include/node -o uv_addon.node uv_addon.c
 * JavaScript: require('./uv_addon.node').checksum(callback) runs one
 * checksum on the thread pool and calls callback(result).
 */
#include <node_api.h>
#include <stdlib.h>
#include <uv.h>

struct job {
	uv_work_t req;
	napi_env env;
	napi_ref callback;
	double result;
};

/* Thread pool: a small CPU-bound checksum. */
static void checksum_work(uv_work_t *req)
{
	struct job *job = (struct job *)req;
	unsigned long h = 5381;
	for (unsigned long i = 0; i < 20000; i++)
		h = h * 33 + i;
	job->result = (double)(h & 0xffffffff);
}

/* Event loop: hand the result to the JavaScript callback. */
static void checksum_done(uv_work_t *req, int status)
{
	struct job *job = (struct job *)req;
	napi_env env = job->env;
	napi_handle_scope scope;
	napi_value callback, global, result;

	(void)status;
	napi_open_handle_scope(env, &scope);
	napi_get_reference_value(env, job->callback, &callback);
	napi_get_global(env, &global);
	napi_create_double(env, job->result, &result);
	napi_call_function(env, global, callback, 1, &result, NULL);
	napi_close_handle_scope(env, scope);
	napi_delete_reference(env, job->callback);
	free(job);
}

/* checksum(callback): queue one job. */
static napi_value checksum(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	uv_loop_t *loop;
	struct job *job;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1)
		return NULL;
	job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->env = env;
	napi_create_reference(env, argv[0], 1, &job->callback);
	napi_get_uv_event_loop(env, &loop);
	if (uv_queue_work(loop, &job->req, checksum_work, checksum_done) != 0) {
		napi_delete_reference(env, job->callback);
		free(job);
		napi_throw_error(env, NULL, "uv_queue_work failed");
	}
	return NULL;
}

NAPI_MODULE_INIT()
{
	napi_value fn;
	napi_create_function(env, "checksum", NAPI_AUTO_LENGTH, checksum, NULL, &fn);
	napi_set_named_property(env, exports, "checksum", fn);
	return exports;
}
