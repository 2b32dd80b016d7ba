/* connhelper: loopback TCP connections of known byte counts, for the qemu
 * guests of scripts/record-kernel-testdata.sh and scripts/kernel-matrix.sh.
 *
 *   connhelper READY_FILE [SPEC...]     SPEC = 4|6:SPORT:DPORT:BYTES
 *
 * One listener per distinct (family, DPORT), on 127.0.0.1 or [::1]
 * (IPV6_V6ONLY), in the order the SPECs name them. Then, one after the
 * other, a client bound to the loopback address and SPORT (SO_REUSEADDR,
 * bind before connect) connects to DPORT and sends BYTES; the server side
 * reads every byte; nothing goes server->client. Each client then waits
 * until its bytes are all acked (SIOCOUTQ == 0). Then the helper creates
 * READY_FILE and keeps every socket open until killed.
 *
 * Without SPECs: the scenario of testdata/kernels:
 *   127.0.0.1:40001 -> 127.0.0.1:5001   1000 bytes client->server
 *   127.0.0.1:40002 -> 127.0.0.1:5001  20000 bytes client->server
 *   [::1]:40003     -> [::1]:5002        300 bytes client->server
 *
 *   connhelper churn N SPORT DPORT BYTES
 *
 * Precision mode's scenario: a listener on 127.0.0.1:DPORT, then N
 * connections one after the other from 127.0.0.1:SPORT, SPORT+1, ...: each
 * sends BYTES in one send(2), the server reads them, the client closes
 * first, the server reads the end and closes. Then one more from SPORT+N
 * that sends BYTES and closes with SO_LINGER 0 (a reset). Prints one line
 * per connection and exits.
 *
 *   connhelper overflow N DPORT MS
 *
 * A listener on 127.0.0.1:DPORT with a backlog of 1 that never accepts,
 * N non-blocking connects to it, MS milliseconds of their SYN retries
 * (accept-queue overflows), then the clients close and the listener stays
 * MS more (so no overflow happens after the helper exits).
 *
 *   connhelper delack N DPORT
 *
 * One connection to 127.0.0.1:DPORT whose client sends N segments of 10
 * bytes 100 ms apart; the server reads nothing until the end, so the
 * segments are acknowledged by its delayed-ACK timer.
 *
 *   connhelper udprate RATE SECONDS DPORT
 *
 * A receiver on 127.0.0.1:DPORT (4 MiB receive buffer) and a sender in one
 * process: every millisecond RATE/1000 datagrams of 200 bytes are sent and
 * the receiver reads all it holds, for SECONDS; prints what was sent and read.
 *
 *   connhelper udpnoport N DPORT
 *
 * N datagrams of 200 bytes from one socket (bound to 127.0.0.1:DPORT+1)
 * to 127.0.0.1:DPORT, where nothing listens (each a NoPorts, answered by
 * an ICMP port unreachable: loopback is not rate-limited), 10 ms apart.
 *
 *   connhelper udpflood N DPORT MS
 *
 * A UDP receiver on 127.0.0.1:DPORT with a 2 KiB receive buffer that never
 * reads, N datagrams of 200 bytes sent to it (most are dropped: the
 * socket's drops and the namespace's Udp RcvbufErrors), then the receiver
 * stays open MS milliseconds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 16

static void die(const char *what) { perror(what); exit(1); }

static void addr(struct sockaddr_storage *s, socklen_t *l, int v6, int port) {
  memset(s, 0, sizeof *s);
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)s;
    a->sin6_family = AF_INET6; a->sin6_port = htons(port); a->sin6_addr = in6addr_loopback;
    *l = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)s;
    a->sin_family = AF_INET; a->sin_port = htons(port); a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *l = sizeof *a;
  }
}

static int sock_bound(int v6, int port) {
  struct sockaddr_storage ss; socklen_t len; int one = 1;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)) die("SO_REUSEADDR");
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) die("IPV6_V6ONLY");
  addr(&ss, &len, v6, port);
  if (bind(fd, (struct sockaddr *)&ss, len)) die("bind");
  return fd;
}

static int drain(int fd, int flags) {
  char rb[65536];
  ssize_t r = recv(fd, rb, sizeof rb, flags);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (r <= 0) die("recv");
  return (int)r;
}

static int churn(int n, int sport, int dport, int bytes) {
  int lfd = sock_bound(0, dport);
  if (listen(lfd, 64)) die("listen");
  char *buf = calloc(1, bytes + 1);
  if (!buf) die("calloc");
  for (int i = 0; i <= n; i++) {
    struct sockaddr_storage peer; socklen_t plen;
    int fd = sock_bound(0, sport + i);
    addr(&peer, &plen, 0, dport);
    if (connect(fd, (struct sockaddr *)&peer, plen)) die("connect");
    int srv = accept(lfd, NULL, NULL);
    if (srv < 0) die("accept");
    if (send(fd, buf, bytes, 0) != bytes) die("send");
    int got = 0;
    while (got < bytes) got += drain(srv, 0);
    if (i == n) {
      struct linger lg = {1, 0};
      if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg)) die("SO_LINGER");
      close(fd);
      char rb[16];
      recv(srv, rb, sizeof rb, 0);   /* ECONNRESET: the reset arrived */
      close(srv);
      printf("connhelper: churn %d -> %d: %d bytes, reset\n", sport + i, dport, got);
    } else {
      close(fd);
      char rb[4096];
      while (recv(srv, rb, sizeof rb, 0) > 0) {}   /* up to the client's FIN */
      close(srv);
      printf("connhelper: churn %d -> %d: %d bytes, closed\n", sport + i, dport, got);
    }
  }
  close(lfd);
  return 0;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int overflow(int n, int dport, int ms) {
  int lfd = sock_bound(0, dport);
  if (listen(lfd, 1)) die("listen");
  int fds[256];
  if (n > 256) n = 256;
  for (int i = 0; i < n; i++) {
    struct sockaddr_storage peer; socklen_t plen;
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fds[i] < 0) die("socket");
    addr(&peer, &plen, 0, dport);
    connect(fds[i], (struct sockaddr *)&peer, plen);   /* EINPROGRESS */
  }
  sleep_ms(ms);
  for (int i = 0; i < n; i++) close(fds[i]);
  sleep_ms(ms);
  close(lfd);
  printf("connhelper: overflow %d connects to a backlog of 1 on %d\n", n, dport);
  return 0;
}

static int delack(int n, int dport) {
  int lfd = sock_bound(0, dport);
  if (listen(lfd, 4)) die("listen");
  struct sockaddr_storage peer; socklen_t plen;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  addr(&peer, &plen, 0, dport);
  if (connect(fd, (struct sockaddr *)&peer, plen)) die("connect");
  int srv = accept(lfd, NULL, NULL);
  if (srv < 0) die("accept");
  char buf[10] = {0};
  for (int i = 0; i < n; i++) {
    if (send(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf) die("send");
    sleep_ms(100);
  }
  int got = 0;
  while (got < n * 10) got += drain(srv, 0);
  close(fd);
  close(srv);
  close(lfd);
  printf("connhelper: delack %d segments, %d bytes read late\n", n, got);
  return 0;
}

static int udpflood(int n, int dport, int ms) {
  struct sockaddr_storage to; socklen_t tlen;
  addr(&to, &tlen, 0, dport);
  int rcv = socket(AF_INET, SOCK_DGRAM, 0), snd = socket(AF_INET, SOCK_DGRAM, 0), size = 2048;
  if (rcv < 0 || snd < 0) die("socket");
  if (setsockopt(rcv, SOL_SOCKET, SO_RCVBUF, &size, sizeof size)) die("SO_RCVBUF");
  if (bind(rcv, (struct sockaddr *)&to, tlen)) die("bind");
  char payload[200] = {0};
  int sent = 0;
  for (int i = 0; i < n; i++)
    sent += sendto(snd, payload, sizeof payload, 0, (struct sockaddr *)&to, tlen) == (ssize_t)sizeof payload;
  printf("connhelper: udpflood %d of %d datagrams sent to :%d\n", sent, n, dport);
  fflush(stdout);
  sleep_ms(ms);
  close(snd);
  close(rcv);
  return 0;
}

static int udpnoport(int n, int dport) {
  struct sockaddr_storage to, from; socklen_t tlen, flen;
  addr(&to, &tlen, 0, dport);
  addr(&from, &flen, 0, dport + 1);
  int snd = socket(AF_INET, SOCK_DGRAM, 0);
  if (snd < 0) die("socket");
  if (bind(snd, (struct sockaddr *)&from, flen)) die("bind");
  char payload[200] = {0};
  int sent = 0;
  for (int i = 0; i < n; i++) {
    sent += sendto(snd, payload, sizeof payload, 0, (struct sockaddr *)&to, tlen) == (ssize_t)sizeof payload;
    sleep_ms(10);
  }
  printf("connhelper: udpnoport %d of %d datagrams sent to :%d\n", sent, n, dport);
  fflush(stdout);
  close(snd);
  return 0;
}

static int udprate(int rate, int seconds, int dport) {
  struct sockaddr_storage to; socklen_t tlen;
  addr(&to, &tlen, 0, dport);
  int rcv = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), snd = socket(AF_INET, SOCK_DGRAM, 0);
  int size = 4 << 20;
  if (rcv < 0 || snd < 0) die("socket");
  if (setsockopt(rcv, SOL_SOCKET, SO_RCVBUF, &size, sizeof size)) die("SO_RCVBUF");
  if (bind(rcv, (struct sockaddr *)&to, tlen)) die("bind");
  char payload[200] = {0}, buf[256];
  long sent = 0, got = 0, per_ms = rate / 1000;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long tick = 0; tick < (long)seconds * 1000; tick++) {
    for (long i = 0; i < per_ms; i++)
      sent += sendto(snd, payload, sizeof payload, 0, (struct sockaddr *)&to, tlen) == (ssize_t)sizeof payload;
    while (recv(rcv, buf, sizeof buf, 0) >= 0) got++;
    /* Until the next millisecond. */
    long due_ns = (tick + 1) * 1000000L;
    for (;;) {
      clock_gettime(CLOCK_MONOTONIC, &now);
      long el = (now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec);
      if (el >= due_ns) break;
      struct timespec d = {0, due_ns - el};
      nanosleep(&d, NULL);
    }
  }
  while (recv(rcv, buf, sizeof buf, 0) >= 0) got++;
  printf("connhelper: udprate %ld sent %ld read\n", sent, got);
  fflush(stdout);
  close(snd);
  close(rcv);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "udprate") == 0)
    return udprate(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
  if (argc == 4 && strcmp(argv[1], "udpnoport") == 0)
    return udpnoport(atoi(argv[2]), atoi(argv[3]));
  if (argc == 5 && strcmp(argv[1], "udpflood") == 0)
    return udpflood(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
  if (argc == 5 && strcmp(argv[1], "overflow") == 0)
    return overflow(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
  if (argc == 4 && strcmp(argv[1], "delack") == 0)
    return delack(atoi(argv[2]), atoi(argv[3]));
  if (argc == 6 && strcmp(argv[1], "churn") == 0)
    return churn(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
  static struct { int v6, sport, dport, bytes; } c[MAXCONN] = {
      {0, 40001, 5001, 1000}, {0, 40002, 5001, 20000}, {1, 40003, 5002, 300}};
  int n = 3;
  struct { int v6, port, fd; } l[MAXCONN];
  int nl = 0, maxbytes = 0;
  if (argc < 2 || argc > 2 + MAXCONN) {
    fprintf(stderr, "usage: connhelper READY_FILE [4|6:SPORT:DPORT:BYTES ...]\n");
    return 2;
  }
  if (argc > 2) {
    n = argc - 2;
    for (int i = 0; i < n; i++) {
      int fam;
      if (sscanf(argv[2 + i], "%d:%d:%d:%d", &fam, &c[i].sport, &c[i].dport, &c[i].bytes) != 4
          || (fam != 4 && fam != 6) || c[i].bytes < 0) {
        fprintf(stderr, "connhelper: bad spec '%s' (4|6:SPORT:DPORT:BYTES)\n", argv[2 + i]);
        return 2;
      }
      c[i].v6 = fam == 6;
    }
  }
  for (int i = 0; i < n; i++) {
    int j;
    if (c[i].bytes > maxbytes) maxbytes = c[i].bytes;
    for (j = 0; j < nl; j++)
      if (l[j].v6 == c[i].v6 && l[j].port == c[i].dport) break;
    if (j < nl) continue;
    l[nl].v6 = c[i].v6; l[nl].port = c[i].dport;
    l[nl].fd = sock_bound(c[i].v6, c[i].dport);
    if (listen(l[nl].fd, 16)) die("listen");
    nl++;
  }
  char *buf = malloc(maxbytes + 1);
  if (!buf) die("malloc");
  memset(buf, 'x', maxbytes + 1);
  for (int i = 0; i < n; i++) {
    struct sockaddr_storage peer; socklen_t plen;
    int lfd = -1;
    for (int j = 0; j < nl; j++)
      if (l[j].v6 == c[i].v6 && l[j].port == c[i].dport) lfd = l[j].fd;
    int fd = sock_bound(c[i].v6, c[i].sport);
    addr(&peer, &plen, c[i].v6, c[i].dport);
    if (connect(fd, (struct sockaddr *)&peer, plen)) die("connect");
    int srv = accept(lfd, NULL, NULL);
    if (srv < 0) die("accept");
    int sent = 0, got = 0;
    while (sent < c[i].bytes) {
      ssize_t k = send(fd, buf + sent, c[i].bytes - sent, MSG_DONTWAIT);
      if (k > 0) sent += k;
      else if (k < 0 && errno != EAGAIN && errno != EINTR) die("send");
      got += drain(srv, MSG_DONTWAIT);
    }
    while (got < c[i].bytes) got += drain(srv, 0);
    if (got != c[i].bytes) { fprintf(stderr, "conn %d: got %d\n", i, got); return 1; }
    for (int tries = 0;; tries++) {   /* every sent byte acked */
      int outq = -1;
      if (ioctl(fd, SIOCOUTQ, &outq)) die("SIOCOUTQ");
      if (outq == 0) break;
      if (tries > 10000) { fprintf(stderr, "conn %d: outq stays %d\n", i, outq); return 1; }
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
    printf("connhelper: %d -> %d: %d bytes sent and read\n", c[i].sport, c[i].dport, got);
    /* fd and srv stay open */
  }
  fflush(stdout);
  int rf = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (rf < 0) die(argv[1]);
  close(rf);
  for (;;) pause();
}
