/* bare-dump.c - owned by scripts/bench.sh: the baseline for "cost of a bare
 * sock_diag dump". One SOCK_DIAG_BY_FAMILY (inet_diag_req_v2) dump of all TCP
 * sockets per family (AF_INET, AF_INET6), all states, with INET_DIAG_INFO;
 * walks every message and attribute, sums tcpi_bytes_acked.
 * Prints "sockets=<n> bytes_acked=<sum>". Build: gcc -O2 -o bare-dump bare-dump.c
 * With namespace files as arguments (/run/netns/NAME), enters each in turn
 * (setns) and dumps it: the floor for bench-netns.sh. With BARE_REPEAT=N
 * (and BARE_INTERVAL_MS=M) it dumps N times, M ms apart: the floor of a
 * steady poll, for bench.sh. With BARE_PROTO=udp it dumps UDP and UDP-Lite
 * sockets instead (both families, all states, with INET_DIAG_SKMEMINFO; a
 * protocol the kernel cannot dump is skipped) and sums SK_MEMINFO_DROPS in
 * place of bytes_acked: the floor for bench-udp.sh. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[256 * 1024];
static int udp_mode;

static int dump(int fd, int family, int protocol, unsigned long *n, unsigned long long *acked) {
    struct { struct nlmsghdr nh; struct inet_diag_req_v2 r; } req = {
        .nh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = family },
        .r = { .sdiag_family = family, .sdiag_protocol = protocol,
               .idiag_ext = 1 << ((udp_mode ? INET_DIAG_SKMEMINFO : INET_DIAG_INFO) - 1),
               .idiag_states = ~0U },
    };
    if (send(fd, &req, sizeof(req), 0) < 0) return perror("send"), -1;
    for (;;) {
        ssize_t len = recv(fd, buf, sizeof(buf), 0);
        if (len < 0) return perror("recv"), -1;
        for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE) return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *e = NLMSG_DATA(h);
                return fprintf(stderr, "netlink error %d\n", e->error), -1;
            }
            struct inet_diag_msg *m = NLMSG_DATA(h);
            int alen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
            (*n)++;
            for (struct rtattr *a = (void *)(m + 1); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (udp_mode && a->rta_type == INET_DIAG_SKMEMINFO
                        && RTA_PAYLOAD(a) >= (SK_MEMINFO_DROPS + 1) * sizeof(__u32)) {
                    *acked += ((__u32 *)RTA_DATA(a))[SK_MEMINFO_DROPS];
                    continue;
                }
                if (a->rta_type != INET_DIAG_INFO) continue;
                struct tcp_info ti = {0};  /* older kernels send a shorter struct */
                size_t l = RTA_PAYLOAD(a) < sizeof(ti) ? RTA_PAYLOAD(a) : sizeof(ti);
                memcpy(&ti, RTA_DATA(a), l);
                *acked += ti.tcpi_bytes_acked;
            }
        }
    }
}

static int dump_here(unsigned long *n, unsigned long long *acked) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG), rcv = 1 << 20;
    if (fd < 0) return perror("socket"), 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    int failed;
    if (udp_mode) {
        failed = dump(fd, AF_INET, IPPROTO_UDP, n, acked) || dump(fd, AF_INET6, IPPROTO_UDP, n, acked);
        /* UDP-Lite: as tcpipstat asks, tolerated where the kernel lacks it. */
        if (!failed && (dump(fd, AF_INET, IPPROTO_UDPLITE, n, acked) ||
                        dump(fd, AF_INET6, IPPROTO_UDPLITE, n, acked)))
            fprintf(stderr, "bare-dump: no UDP-Lite dump here\n");
    } else {
        failed = dump(fd, AF_INET, IPPROTO_TCP, n, acked) || dump(fd, AF_INET6, IPPROTO_TCP, n, acked);
    }
    return close(fd), failed;
}

int main(int argc, char **argv) {
    unsigned long n = 0; unsigned long long acked = 0;
    /* BARE_REPEAT=N BARE_INTERVAL_MS=M: N dumps M ms apart, as a poller
     * makes them (CPU per dump = the run's CPU / N); prints per-dump counts. */
    const char *rep = getenv("BARE_REPEAT"), *gap = getenv("BARE_INTERVAL_MS");
    int repeat = rep ? atoi(rep) : 1, interval_ms = gap ? atoi(gap) : 0;
    const char *proto = getenv("BARE_PROTO");
    udp_mode = proto && strcmp(proto, "udp") == 0;
    if (repeat < 1) repeat = 1;
    for (int r = 0; argc == 1 && r < repeat; r++) {
        if (r > 0 && interval_ms > 0) usleep(interval_ms * 1000);
        if (dump_here(&n, &acked)) return 1;
    }
    if (argc == 1) n /= repeat, acked /= repeat;
    for (int i = 1; i < argc; i++) {
        int ns = open(argv[i], O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) return perror(argv[i]), 1;
        close(ns);
        if (dump_here(&n, &acked)) return 1;
    }
    printf("sockets=%lu bytes_acked=%llu\n", n, acked);
    return 0;
}
