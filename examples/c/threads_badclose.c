/*
 * threads_badclose.c — several threads failing close() at the same time,
 * for `prodtrace catch --count N` (exactly N matches must be acted on, however
 * many threads fail at once) and for stopping a multi-threaded process.
 *
 * usage: threads_badclose THREADS ROUNDS [DELAY_MS]
 * Each thread calls close() ROUNDS times on a descriptor that was never
 * open (1000 + thread number), all threads released together; the process
 * prints the number of failed closes and exits 0 when every call failed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_barrier_t start;
static int rounds;

__attribute__((noinline)) static int worker_close(int fd)
{
	return close(fd);
}

static void *worker(void *arg)
{
	long n = (long)arg, failed = 0;
	pthread_barrier_wait(&start);
	for (int i = 0; i < rounds; i++)
		if (worker_close(1000 + (int)n) != 0)
			failed++;
	return (void *)failed;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s THREADS ROUNDS [DELAY_MS]\n", argv[0]);
		return 2;
	}
	int threads = atoi(argv[1]);
	rounds = atoi(argv[2]);
	if (argc > 3)
		usleep(atoi(argv[3]) * 1000);
	pthread_t tid[64];
	if (threads < 1 || threads > 64)
		return 2;
	pthread_barrier_init(&start, NULL, threads);
	for (long i = 0; i < threads; i++)
		pthread_create(&tid[i], NULL, worker, (void *)i);
	long total = 0;
	for (int i = 0; i < threads; i++) {
		void *r;
		pthread_join(tid[i], &r);
		total += (long)r;
	}
	printf("failed closes: %ld\n", total);
	return total == (long)threads * rounds ? 0 : 1;
}
