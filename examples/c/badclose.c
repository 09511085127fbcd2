/*
 * badclose.c — a program with an fd mix-up, for `prodtrace catch`.
 *
 * It opens /dev/null, closes the descriptor in release_handle(), then
 * closes it again in release_handle(): the second close() fails with EBADF.
 * Right after that failing close() it writes MARKER (a file), so a tool that
 * claims to stop the process at the failing close() can be checked: while
 * the process is held, MARKER must not exist.
 *
 * usage: badclose MARKER [DELAY_MS [FD [LINGER_MS]]]
 *   DELAY_MS   wait this long before the first close (time to attach)
 *   FD         move the descriptor to this number first (to filter on it)
 *   LINGER_MS  stay alive this long after writing MARKER
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Failed closes; using close()'s result keeps the call from being a tail
 * call, so release_handle() is on the stack while close() runs. */
static volatile int failed_closes;

__attribute__((noinline)) void release_handle(int fd)
{
	if (close(fd) != 0)
		failed_closes++;
}

__attribute__((noinline)) static void write_marker(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		(void)write(fd, "after close\n", 12);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MARKER [DELAY_MS [FD [LINGER_MS]]]\n", argv[0]);
		return 2;
	}
	int delay_ms = argc > 2 ? atoi(argv[2]) : 0;
	int want_fd = argc > 3 ? atoi(argv[3]) : -1;
	int linger_ms = argc > 4 ? atoi(argv[4]) : 0;

	usleep(delay_ms * 1000);
	int fd = open("/dev/null", O_RDONLY);
	if (fd < 0)
		return 1;
	if (want_fd >= 0 && want_fd != fd) {
		if (dup2(fd, want_fd) < 0)
			return 1;
		close(fd);
		fd = want_fd;
	}
	release_handle(fd); /* fine */
	release_handle(fd); /* EBADF: the bug */
	write_marker(argv[1]);
	usleep(linger_ms * 1000);
	return failed_closes == 1 ? 0 : 1;
}
