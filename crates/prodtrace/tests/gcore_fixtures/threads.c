/*
 * Target for the `prodtrace gcore` tests: a multi-threaded program whose
 * threads sit in known functions (worker_sleep in usleep, worker_cond in
 * pthread_cond_wait, worker_spin in a busy loop) while main_loop keeps
 * writing an increasing counter to the file named by argv[1], so a test can
 * see that the process runs on after the dump.
 *   threads COUNTER_FILE [MB_OF_TOUCHED_MEMORY] [churn|stop]
 * With "churn", one more thread keeps creating and joining short-lived
 * threads (threads appear and vanish while the dumper attaches). With
 * "stop", the main thread sends itself SIGSTOP from stop_here() once ready,
 * so the process is group-stopped at the exit of that system call (as a
 * BPF program stops a target at a syscall exit).
 * Prints its PID once every thread is in place; threads are named after
 * their function (sleep, cond, spin, churn).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_barrier_t ready;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

__attribute__((noinline)) static void *worker_sleep(void *arg) {
    pthread_barrier_wait(&ready);
    for (;;) usleep(100000);
    return arg;
}

__attribute__((noinline)) static void *worker_cond(void *arg) {
    pthread_barrier_wait(&ready);
    pthread_mutex_lock(&lock);
    for (;;) pthread_cond_wait(&never, &lock);
    return arg;
}

__attribute__((noinline)) static void *worker_spin(void *arg) {
    volatile unsigned long x = 0;
    pthread_barrier_wait(&ready);
    for (;;) x++;
    return arg;
}

static void *short_lived(void *arg) { return arg; }

__attribute__((noinline)) static void *worker_churn(void *arg) {
    pthread_barrier_wait(&ready);
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) == 0) pthread_join(t, NULL);
    }
    return arg;
}

__attribute__((noinline)) static void stop_here(void) {
    syscall(SYS_tgkill, getpid(), gettid(), SIGSTOP);
}

__attribute__((noinline)) static void main_loop(int fd) {
    char buf[32];
    for (unsigned long counter = 1;; counter++) {
        snprintf(buf, sizeof buf, "%020lu\n", counter);
        if (pwrite(fd, buf, 21, 0) != 21) exit(2);
        usleep(2000);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) return 1;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 1;
    size_t mb = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    int churn = argc > 3 && strcmp(argv[3], "churn") == 0;
    int stop = argc > 3 && strcmp(argv[3], "stop") == 0;
    if (mb) {
        char *p = malloc(mb << 20);
        for (size_t i = 0; i < mb << 20; i += 4096) p[i] = (char)(i >> 12) | 1;
    }
    void *(*fns[])(void *) = {worker_sleep, worker_cond, worker_spin, worker_churn};
    const char *names[] = {"sleep", "cond", "spin", "churn"};
    int n = churn ? 4 : 3;
    pthread_barrier_init(&ready, NULL, n + 1);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, fns[i], NULL);
        pthread_setname_np(t, names[i]);
    }
    pthread_barrier_wait(&ready);
    printf("%d\n", getpid());
    fflush(stdout);
    if (stop) stop_here();
    main_loop(fd);
    return 0;
}
