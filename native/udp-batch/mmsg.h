// recvmmsg/sendmmsg over the descriptor arrays JS shares with udp_batch.c.
#ifndef NETBOOT_MMSG_H
#define NETBOOT_MMSG_H
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

// Words per receive descriptor: length (the datagram's real length, more than the slot when it
// was truncated), source address (host order), source port.
#define RX_WORDS 3
// Words per send descriptor: offset in the send buffer, length, destination address (host order),
// destination port.
#define TX_WORDS 4
// Datagrams per sendmmsg call.
#define TX_CHUNK 64

typedef struct {
  struct mmsghdr* msgs;
  struct iovec* iovs;
  struct sockaddr_in* names;
  uint32_t slots;
} rx_ring_t;

// Lays the slots out once: slot i is `slot` bytes at rx + i * slot.
int rx_ring_init(rx_ring_t* r, uint8_t* rx, uint32_t slot, uint32_t slots);
void rx_ring_free(rx_ring_t* r);
// One recvmmsg without waiting: the datagrams queued now, up to the slot count; descriptors
// filled in. Returns the count, or -errno (-EAGAIN: none queued).
int rx_ring_recv(int fd, rx_ring_t* r, uint32_t* desc);
// Sends descriptors [start, end) of `desc` from `tx`. Returns the index it stopped at: `end` when
// all went out, less when the kernel buffer filled (EAGAIN). A datagram the kernel refused for any
// other reason: returns -(index + 1) and sets *err to its errno.
ssize_t tx_send(int fd, const uint8_t* tx, size_t tx_len, const uint32_t* desc, uint32_t start, uint32_t end, int* err);

#endif
