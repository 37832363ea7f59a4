// UDP GSO (one sendmsg with UDP_SEGMENT per up to 64 segments) and sendmmsg batches.
#define _GNU_SOURCE
#include "batch_send.h"

#include "../common/nb_common.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>

#define MMSG_BATCH 64

size_t send_gso(int fd, uint8_t* base, size_t stride, size_t count, size_t final_len, int* err) {
  char control[CMSG_SPACE(sizeof(uint16_t))];
  struct iovec iov;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t seg = (uint16_t)stride;
  memcpy(CMSG_DATA(cm), &seg, sizeof seg);
  size_t per_call = MAX_UDP_PAYLOAD / stride;
  if (per_call > MAX_GSO_SEGMENTS) per_call = MAX_GSO_SEGMENTS;
  size_t sent = 0;
  while (sent < count) {
    size_t n = count - sent < per_call ? count - sent : per_call;
    size_t len = (n - 1) * stride + (sent + n == count ? final_len : stride);
    iov.iov_base = base + sent * stride;
    iov.iov_len = len;
    msg.msg_controllen = n > 1 ? sizeof control : 0;
    msg.msg_control = n > 1 ? control : NULL;
    ssize_t r = n > 1 && nb_fault(NB_FAULT_GSO) ? (errno = EIO, -1) : sendmsg(fd, &msg, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return sent;
    }
    msg.msg_control = control;
    sent += n;
  }
  *err = 0;
  return sent;
}

ssize_t send_mmsg(int fd, uint8_t* base, size_t stride, size_t count, size_t final_len) {
  struct mmsghdr msgs[MMSG_BATCH];
  struct iovec iovs[MMSG_BATCH];
  size_t sent = 0;
  while (sent < count) {
    size_t n = count - sent < MMSG_BATCH ? count - sent : MMSG_BATCH;
    for (size_t i = 0; i < n; i++) {
      size_t k = sent + i;
      iovs[i].iov_base = base + k * stride;
      iovs[i].iov_len = k + 1 == count ? final_len : stride;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = n == 1 ? (send(fd, iovs[0].iov_base, iovs[0].iov_len, MSG_DONTWAIT) < 0 ? -1 : 1) : sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      return sent > 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? (ssize_t)sent : -errno;
    }
    sent += (size_t)r;
    if ((size_t)r < n) break;  // the kernel buffer filled up
  }
  return (ssize_t)sent;
}
