// The DHCP storm's load client, in C so that it costs the machine far less per exchange than the
// servers it measures (the Node client it replaces took 35-77 us of CPU per reply, more than any
// server, and on two cores it was what the figures measured). load.ts builds the packets with
// our codec and writes them to a file; this program only sends, matches and times them.
//   storm FILE WINDOW SERVER DHCP_ADDR DHCP_PORT PROXY_PORT BIND_ADDR CLIENT_PORT TIMEOUT_MS GAP_MS
// FILE: records [u16 length, big-endian][packet], two per client: its DISCOVER (to DHCP_ADDR:
// DHCP_PORT, broadcast) then its boot server REQUEST (to SERVER:PROXY_PORT); record k's xid is
// record 0's + k. WINDOW clients are in flight at once; each starts with its DISCOVER and sends
// its REQUEST when the OFFER is in. GAP_MS > 0: each client waits that long first (window 1: a
// lone request after idleness). Prints one JSON line.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PACKET 1500

static uint8_t **packets;
static uint16_t *lengths;
static double *sent_at;  // ms; < 0: not in flight
static double *latency_us;
static int records, clients, window_size, next_client, active;
static long replies, lost, wrong;
static struct sockaddr_in dhcp_to, proxy_to;
static struct mmsghdr out[BATCH];
static struct iovec out_iov[BATCH];
static int out_n;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "storm: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void flush(int fd) {
  int done = 0;
  while (done < out_n) {
    int n = sendmmsg(fd, out + done, out_n - done, 0);
    if (n < 0) die("sendmmsg");
    done += n;
  }
  out_n = 0;
}

static void queue(int fd, int k, double t) {
  if (out_n == BATCH) flush(fd);
  out_iov[out_n] = (struct iovec){ packets[k], lengths[k] };
  out[out_n].msg_hdr = (struct msghdr){ .msg_name = k % 2 == 0 ? &dhcp_to : &proxy_to, .msg_namelen = sizeof dhcp_to, .msg_iov = &out_iov[out_n], .msg_iovlen = 1 };
  out_n++;
  sent_at[k] = t;
}

// The next client takes the freed slot, or the slot closes when every client has started.
static void start_next(int fd, double t) {
  if (next_client < clients) queue(fd, 2 * next_client++, t);
  else active--;
}

// The reply's option 53, and whether it names a boot file (`file` or option 67); 0 if malformed.
static int message_type(const uint8_t *p, int len, int *has_file) {
  static const uint8_t cookie[4] = { 99, 130, 83, 99 };
  if (len < 240 || p[0] != 2 || memcmp(p + 236, cookie, 4) != 0) return 0;
  int type = 0;
  *has_file = p[108] != 0;
  for (int i = 240; i < len && p[i] != 255;) {
    if (p[i] == 0) { i++; continue; }
    if (i + 1 >= len || i + 2 + p[i + 1] > len) return 0;
    if (p[i] == 53 && p[i + 1] == 1) type = p[i + 2];
    if (p[i] == 67 && p[i + 1] > 0) *has_file = 1;
    i += 2 + p[i + 1];
  }
  return type;
}

static void load(const char *file) {
  FILE *f = fopen(file, "rb");
  if (f == NULL) die(file);
  int cap = 1024;
  packets = malloc(cap * sizeof *packets);
  lengths = malloc(cap * sizeof *lengths);
  uint8_t h[2];
  while (fread(h, 1, 2, f) == 2) {
    if (records == cap) {
      cap *= 2;
      packets = realloc(packets, cap * sizeof *packets);
      lengths = realloc(lengths, cap * sizeof *lengths);
    }
    lengths[records] = (uint16_t)(h[0] << 8 | h[1]);
    packets[records] = malloc(lengths[records]);
    if (lengths[records] < 240 || fread(packets[records], 1, lengths[records], f) != lengths[records]) {
      fprintf(stderr, "storm: %s: record %d is short\n", file, records);
      exit(2);
    }
    records++;
  }
  fclose(f);
  if (records == 0 || records % 2 != 0) {
    fprintf(stderr, "storm: %s: %d records, want two per client\n", file, records);
    exit(2);
  }
  clients = records / 2;
}

// Steal time (the hypervisor running other guests on our CPUs), all CPUs, in ms: /proc/stat's
// eighth "cpu" field, in 10 ms ticks.
static double steal_ms(void) {
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = { 0 };
  if (f == NULL) return 0;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  return n == 8 ? v[7] * 10.0 : 0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 11) {
    fprintf(stderr, "usage: storm FILE WINDOW SERVER DHCP_ADDR DHCP_PORT PROXY_PORT BIND_ADDR CLIENT_PORT TIMEOUT_MS GAP_MS\n");
    return 2;
  }
  load(argv[1]);
  window_size = atoi(argv[2]);
  double timeout_ms = atof(argv[9]), gap_ms = atof(argv[10]);
  dhcp_to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[5])) };
  proxy_to = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(atoi(argv[6])) };
  struct sockaddr_in self = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[8])) };
  if (inet_pton(AF_INET, argv[3], &proxy_to.sin_addr) != 1 || inet_pton(AF_INET, argv[4], &dhcp_to.sin_addr) != 1
      || inet_pton(AF_INET, argv[7], &self.sin_addr) != 1) {
    fprintf(stderr, "storm: bad address\n");
    return 2;
  }
  uint32_t xid0 = (uint32_t)packets[0][4] << 24 | packets[0][5] << 16 | packets[0][6] << 8 | packets[0][7];

  int fd = socket(AF_INET, SOCK_DGRAM, 0), one = 1, rcvbuf = 4 << 20;
  if (fd < 0) die("socket");
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (bind(fd, (struct sockaddr *)&self, sizeof self) != 0) die("bind");

  sent_at = malloc(records * sizeof *sent_at);
  latency_us = malloc(records * sizeof *latency_us);
  double *discover_ms = malloc(clients * sizeof *discover_ms);
  int discovers = 0;
  for (int k = 0; k < records; k++) sent_at[k] = -1;

  static uint8_t rx[BATCH][MAX_PACKET];
  static struct iovec rx_iov[BATCH];
  static struct mmsghdr in[BATCH];
  for (int i = 0; i < BATCH; i++) {
    rx_iov[i] = (struct iovec){ rx[i], MAX_PACKET };
    in[i].msg_hdr = (struct msghdr){ .msg_iov = &rx_iov[i], .msg_iovlen = 1 };
  }

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  double stolen = steal_ms(), started = now_ms(), last_sweep = started;
  active = window_size < clients ? window_size : clients;
  if (gap_ms > 0) active = 1;
  for (int s = 0; s < active; s++) {
    if (gap_ms > 0) usleep((useconds_t)(gap_ms * 1000));
    queue(fd, 2 * next_client++, now_ms());
  }
  flush(fd);

  while (active > 0) {
    struct pollfd p = { fd, POLLIN, 0 };
    int ready = poll(&p, 1, 50);
    if (ready < 0 && errno != EINTR) die("poll");
    int n = ready > 0 ? recvmmsg(fd, in, BATCH, MSG_DONTWAIT, NULL) : 0;
    if (n < 0 && errno != EAGAIN && errno != EINTR) die("recvmmsg");
    double t = now_ms();
    int waited = 0;  // with a gap: the next client waits until this batch's follow-ups are out
    for (int i = 0; i < n; i++) {
      const uint8_t *m = rx[i];
      int len = (int)in[i].msg_len;
      if (len < 240 || m[0] != 2) continue;
      uint32_t k = ((uint32_t)m[4] << 24 | m[5] << 16 | m[6] << 8 | m[7]) - xid0;
      if (k >= (uint32_t)records || sent_at[k] < 0) continue;
      double us = (t - sent_at[k]) * 1000;
      sent_at[k] = -1;
      latency_us[replies++] = us;
      int has_file = 0, type = message_type(m, len, &has_file);
      if (k % 2 == 0) {
        if (type != 2) wrong++;
        if (gap_ms > 0) discover_ms[discovers++] = us / 1000;
        queue(fd, k + 1, t);
      } else {
        if (type != 5 || !has_file) wrong++;
        if (gap_ms > 0 && next_client < clients) waited = 1;
        else start_next(fd, t);
      }
    }
    flush(fd);
    if (waited) {
      usleep((useconds_t)(gap_ms * 1000));
      queue(fd, 2 * next_client++, now_ms());
      flush(fd);
    }
    if (t - last_sweep >= 50) {  // exchanges that timed out free their slot
      last_sweep = t;
      for (int k = 0; k < records; k++) {
        if (sent_at[k] >= 0 && t - sent_at[k] > timeout_ms) {
          sent_at[k] = -1;
          lost++;
          if (gap_ms > 0 && next_client < clients) usleep((useconds_t)(gap_ms * 1000));
          start_next(fd, now_ms());
        }
      }
      flush(fd);
    }
  }
  double seconds = (now_ms() - started) / 1000;
  getrusage(RUSAGE_SELF, &r1);
  stolen = steal_ms() - stolen;
  double cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e6
                  + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
  qsort(latency_us, replies, sizeof *latency_us, cmp);
#define Q(p) (replies == 0 ? 0 : latency_us[(long)(p * replies) < replies ? (long)(p * replies) : replies - 1] / 1000)
  printf("{\"clients\":%d,\"window\":%d,\"replies\":%ld,\"lost\":%ld,\"wrong\":%ld,\"seconds\":%.6f,\"repliesPerSec\":%.1f,"
         "\"p50Ms\":%.4f,\"p99Ms\":%.4f,\"maxMs\":%.4f,\"clientCpuUs\":%.0f,\"stealMs\":%.0f,\"discoverMs\":[",
         clients, window_size, replies, lost, wrong, seconds, replies / seconds, Q(0.5), Q(0.99), Q(1.0), cpu_us, stolen);
  for (int i = 0; i < discovers; i++) printf("%s%.4f", i ? "," : "", discover_ms[i]);
  printf("]}\n");
  return 0;
}
