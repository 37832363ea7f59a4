// The least a TFTP server that sleeps between ACKs can do for a lock-step read request (octet,
// blksize and tsize answered with an OACK, window 1, RFC 1350/2347/2348/2349): the one file it
// serves is read into memory at start, each request gets one socket connected to the client, and
// then: wait for the ACK, check its block number, send the next DATA straight from memory. It is
// the floor bench/tftp/ideal.ts measures real servers against, not a server to deploy: one
// transfer at a time, no path checks beyond the file's name.
//   ideal PORT FILE [block|epoll|spin] [SPIN_US]
// block: blocking recv. epoll: epoll_wait then recv, as an event loop (libuv) does. spin: recv
// with MSG_DONTWAIT for up to SPIN_US µs, then a blocking recv (busy-polling, measurement only).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { WAIT_BLOCK, WAIT_EPOLL, WAIT_SPIN };
static int mode = WAIT_BLOCK;
static long spin_us = 50;
static char *data;
static size_t size;
static const char *name;
static long caught_spinning, slept; // spin mode: where each ACK was caught

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

// One datagram from the connected socket; -1 with EAGAIN after a second without one.
static ssize_t wait_recv(int fd, int ep, char *buf, size_t len) {
  if (mode == WAIT_SPIN) {
    double end = now_us() + spin_us;
    do {
      ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
      if (n >= 0 || errno != EAGAIN) {
        caught_spinning++;
        return n;
      }
    } while (now_us() < end);
    slept++;
  }
  if (mode == WAIT_EPOLL) {
    struct epoll_event ev;
    int r = epoll_wait(ep, &ev, 1, 1000);
    if (r <= 0) {
      if (r == 0) errno = EAGAIN;
      return -1;
    }
    return recv(fd, buf, len, MSG_DONTWAIT);
  }
  return recv(fd, buf, len, 0); // SO_RCVTIMEO is 1 s
}

static void send_error(int fd, const struct sockaddr_in *to, int code, const char *msg) {
  char buf[128];
  int n = snprintf(buf + 4, sizeof buf - 4, "%s", msg) + 5;
  buf[0] = 0, buf[1] = 5, buf[2] = 0, buf[3] = (char)code;
  sendto(fd, buf, (size_t)n, 0, (const struct sockaddr *)to, sizeof *to);
}

// DATA block b (1-based) from memory: a 4-byte header and the file's bytes, no copy.
static void send_block(int fd, uint32_t b, size_t blksize) {
  size_t off = (size_t)(b - 1) * blksize;
  size_t len = off >= size ? 0 : (size - off < blksize ? size - off : blksize);
  unsigned char hdr[4] = {0, 3, (unsigned char)(b >> 8), (unsigned char)b};
  struct iovec iov[2] = {{hdr, 4}, {data + off, len}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  sendmsg(fd, &m, 0);
}

static void serve(int listener, const struct sockaddr_in *client, char *req, size_t len) {
  // RRQ: 0 1 filename 0 mode 0 [option 0 value 0]...
  char *end = req + len, *fields[32];
  int nf = 0;
  for (char *p = req + 2; p < end && nf < 32; nf++) {
    char *z = memchr(p, 0, (size_t)(end - p));
    if (z == NULL) break;
    fields[nf] = p;
    p = z + 1;
  }
  if (len < 4 || req[0] != 0 || req[1] != 1 || nf < 2 || strcasecmp(fields[1], "octet") != 0) {
    send_error(listener, client, 4, "octet read requests only");
    return;
  }
  const char *base = strrchr(fields[0], '/');
  if (strcmp(base ? base + 1 : fields[0], name) != 0) {
    send_error(listener, client, 1, "file not found");
    return;
  }
  size_t blksize = 512;
  char oack[128] = {0, 6};
  size_t olen = 2;
  for (int i = 2; i + 1 < nf; i += 2) {
    if (strcasecmp(fields[i], "blksize") == 0) {
      long v = atol(fields[i + 1]);
      if (v < 8) continue;
      blksize = v > 65464 ? 65464 : (size_t)v; // RFC 2348: the server may answer smaller
      olen += (size_t)sprintf(oack + olen, "blksize%c%zu", 0, blksize) + 1;
    } else if (strcasecmp(fields[i], "tsize") == 0) {
      olen += (size_t)sprintf(oack + olen, "tsize%c%zu", 0, size) + 1;
    }
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval second = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof second);
  if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0 || connect(fd, (const struct sockaddr *)client, sizeof *client) != 0) {
    perror("ideal: transfer socket");
    close(fd);
    return;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  uint32_t last = (uint32_t)(size / blksize) + 1; // the short (maybe empty) final block
  uint32_t sent = 0;                                // 0: the OACK
  if (olen > 2)
    send(fd, oack, olen, 0);
  else
    send_block(fd, sent = 1, blksize);
  char buf[1024];
  caught_spinning = slept = 0;
  for (int tries = 0;;) {
    ssize_t n = wait_recv(fd, ep, buf, sizeof buf);
    if (n < 0) {
      if (errno != EAGAIN || ++tries > 5) break;
      if (sent == 0)
        send(fd, oack, olen, 0);
      else
        send_block(fd, sent, blksize);
      continue;
    }
    if (n >= 2 && buf[0] == 0 && buf[1] == 5) break; // the client gave up
    // Only the ACK of the newest block moves on; duplicates are ignored (no Sorcerer's Apprentice).
    if (n < 4 || buf[0] != 0 || buf[1] != 4 || (((unsigned char)buf[2] << 8) | (unsigned char)buf[3]) != (int)(sent & 0xffff)) continue;
    tries = 0;
    if (sent == last) break;
    send_block(fd, ++sent, blksize);
  }
  if (mode == WAIT_SPIN) fprintf(stderr, "ideal: %u blocks, ACKs caught spinning %ld, after sleeping %ld\n", sent, caught_spinning, slept);
  close(ep);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ideal PORT FILE [block|epoll|spin] [SPIN_US]\n");
    return 2;
  }
  if (argc > 3) mode = strcmp(argv[3], "epoll") == 0 ? WAIT_EPOLL : strcmp(argv[3], "spin") == 0 ? WAIT_SPIN : WAIT_BLOCK;
  if (argc > 4) spin_us = atol(argv[4]);
  name = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
  FILE *f = fopen(argv[2], "rb");
  struct stat st;
  if (f == NULL || fstat(fileno(f), &st) != 0 || (data = malloc((size_t)st.st_size + 1)) == NULL || fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
    perror(argv[2]);
    return 1;
  }
  size = (size_t)st.st_size;
  fclose(f);
  int listener = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("ideal: bind");
    return 1;
  }
  for (;;) {
    char req[1024];
    struct sockaddr_in client;
    socklen_t cl = sizeof client;
    ssize_t n = recvfrom(listener, req, sizeof req - 1, 0, (struct sockaddr *)&client, &cl);
    if (n > 0) serve(listener, &client, req, (size_t)n);
  }
}
