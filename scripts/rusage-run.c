/* rusage-run.c - owned by scripts/bench.sh (used through measure.py): run one
 * command with stdout to /dev/null and print, on its own stdout,
 *     <exit code> <user+sys CPU µs> <wall µs> <peak RSS KiB>
 * Like GNU time -f '%U %S %e %M' but with microsecond precision. It must be a
 * small C program: a child's ru_maxrss starts at the RSS of the process it was
 * forked from (the kernel carries the old mm's high-water mark across exec),
 * so forking from Python would report every command as at least Python-sized.
 * Usage: rusage-run CMD [ARGS...]      Build: gcc -O2 -o rusage-run rusage-run.c */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long us(struct timeval t) { return t.tv_sec * 1000000LL + t.tv_usec; }

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: %s CMD [ARGS...]\n", argv[0]), 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) return perror("fork"), 2;
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd < 0 || dup2(fd, 1) < 0) _exit(127);
        execvp(argv[1], argv + 1);
        perror(argv[1]);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) return perror("wait4"), 2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long long wall = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    printf("%d %lld %lld %ld\n", code, us(ru.ru_utime) + us(ru.ru_stime), wall, ru.ru_maxrss);
    return 0;
}
