// Sending a run of equal-stride datagrams from one buffer in few system calls (udp_link.c).
#ifndef NETBOOT_BATCH_SEND_H
#define NETBOOT_BATCH_SEND_H
#include <netinet/udp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// Older C library headers lack the GSO names; the values are the kernel's ABI.
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

// Linux caps a GSO send at 64 segments (UDP_MAX_SEGMENTS, raised later) and one IPv4 datagram.
#define MAX_GSO_SEGMENTS 64
#define MAX_UDP_PAYLOAD 65507

// `count` datagrams every `stride` bytes from `base`, each `stride` long but the last
// (`final_len`). send_gso returns how many went out and sets *err to the errno that stopped it
// (0: none did; EAGAIN: the send buffer filled up; EIO, EINVAL: this route cannot segment).
// send_mmsg returns how many went out (fewer: the send buffer filled up), or -errno when none
// could.
size_t send_gso(int fd, uint8_t* base, size_t stride, size_t count, size_t final_len, int* err);
ssize_t send_mmsg(int fd, uint8_t* base, size_t stride, size_t count, size_t final_len);

#endif
