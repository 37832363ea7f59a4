// Batched receive and send for udp_batch.c: one system call for many datagrams either way.
#define _GNU_SOURCE
#include "mmsg.h"

#include "../common/nb_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rx_ring_init(rx_ring_t* r, uint8_t* rx, uint32_t slot, uint32_t slots) {
  r->slots = slots;
  r->msgs = nb_calloc(slots, sizeof *r->msgs);
  r->iovs = nb_calloc(slots, sizeof *r->iovs);
  r->names = nb_calloc(slots, sizeof *r->names);
  if (r->msgs == NULL || r->iovs == NULL || r->names == NULL) return -ENOMEM;
  for (uint32_t i = 0; i < slots; i++) {
    r->iovs[i].iov_base = rx + (size_t)i * slot;
    r->iovs[i].iov_len = slot;
    r->msgs[i].msg_hdr.msg_iov = &r->iovs[i];
    r->msgs[i].msg_hdr.msg_iovlen = 1;
    r->msgs[i].msg_hdr.msg_name = &r->names[i];
  }
  return 0;
}

void rx_ring_free(rx_ring_t* r) {
  free(r->msgs);
  free(r->iovs);
  free(r->names);
  r->msgs = NULL;
  r->iovs = NULL;
  r->names = NULL;
}

int rx_ring_recv(int fd, rx_ring_t* r, uint32_t* desc) {
  for (uint32_t i = 0; i < r->slots; i++) {
    r->msgs[i].msg_hdr.msg_namelen = sizeof r->names[i];
    r->msgs[i].msg_hdr.msg_flags = 0;
  }
  // MSG_TRUNC: msg_len is the datagram's real length even when the slot was too small, so JS can
  // say how big the datagram it dropped was.
  int n = recvmmsg(fd, r->msgs, r->slots, MSG_DONTWAIT | MSG_TRUNC, NULL);
  if (n < 0) return -errno;
  for (int i = 0; i < n; i++) {
    desc[RX_WORDS * i] = r->msgs[i].msg_len;
    desc[RX_WORDS * i + 1] = ntohl(r->names[i].sin_addr.s_addr);
    desc[RX_WORDS * i + 2] = ntohs(r->names[i].sin_port);
  }
  return n;
}

ssize_t tx_send(int fd, const uint8_t* tx, size_t tx_len, const uint32_t* desc, uint32_t start, uint32_t end, int* err) {
  struct mmsghdr msgs[TX_CHUNK];
  struct iovec iovs[TX_CHUNK];
  struct sockaddr_in names[TX_CHUNK];
  uint32_t k = start;
  while (k < end) {
    uint32_t n = end - k < TX_CHUNK ? end - k : TX_CHUNK;
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t* d = desc + (size_t)TX_WORDS * (k + i);
      if ((uint64_t)d[0] + d[1] > tx_len || d[3] > 65535) {
        *err = EINVAL;
        return -(ssize_t)(k + i) - 1;
      }
      iovs[i].iov_base = (void*)(tx + d[0]);
      iovs[i].iov_len = d[1];
      memset(&names[i], 0, sizeof names[i]);
      names[i].sin_family = AF_INET;
      names[i].sin_addr.s_addr = htonl(d[2]);
      names[i].sin_port = htons((uint16_t)d[3]);
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &names[i];
      msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    int r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return k;
      *err = errno;
      return -(ssize_t)k - 1;
    }
    // Fewer than asked: the next call says why (a full buffer, or the next datagram's error).
    k += (uint32_t)r;
  }
  return k;
}
