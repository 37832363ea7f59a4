// udp_link: one connected UDP socket for one TFTP transfer, owned here and polled on Node's own
// libuv loop (no threads). Its only jobs are the ones node:dgram does slowly per datagram:
//   - receive into one caller-given buffer and hand JS just the length (no Buffer, no rinfo
//     object, no 64 KiB allocation per datagram),
//   - send a run of equal-stride packets from one buffer in as few system calls as possible:
//     UDP GSO (one sendmsg with UDP_SEGMENT per up to 64 segments) or sendmmsg,
//   - a chain of predicted turns: JS arms "if the next datagram is exactly these bytes, send this
//     run; then if the next is exactly those, send that run; ...". In lock-step the turns then
//     happen here, and JS hears about them in one call at the chain's end (or when it asks),
//     replays them through its state machine and checks every one.
// Besides, readCached: a preadv2(RWF_NOWAIT) into ring slots, so chunks already in the page cache
// are read without a thread-pool round trip (a read that would wait for a disk is refused).
// Every protocol decision stays in TypeScript (tftp-codec.ts, transfer.ts); this file does not
// know what a TFTP packet is. Sends: batch_send.c; chains: chain.c; reads: read_cached.c; the
// request socket (UdpListener): listener.c.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "batch_send.h"
#include "read_cached.h"
#include "udp_link.h"

// Datagrams handled per readable event before yielding to the rest of the loop.
#define RECV_BUDGET 64

static int gso_probe = -1;  // -1 unknown, else 0/1

static void release_link(nb_socket_t* s) {
  link_t* l = (link_t*)s;
  free(l->expects);
  free(l->runs);
  free(l);
}

static void call_js(link_t* l, int fn, size_t argc, napi_value* argv) {
  nb_call_js(l->s.env, l->s.async, l->s.refs[fn], argc, argv);
}

static void report_error(link_t* l, int err) { nb_socket_call_error(&l->s, LINK_ON_ERROR, err); }

// onDatagram(length, steps, lastSent): first the chain steps fired since the last report (the
// last one sent only `lastSent` blocks when >= 0), then the datagram itself (length -1: none).
static void report(link_t* l, int64_t length, int64_t last_sent) {
  napi_env env = l->s.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  napi_create_int64(env, length, &argv[0]);
  napi_create_uint32(env, l->fired, &argv[1]);
  napi_create_int64(env, last_sent, &argv[2]);
  l->fired = 0;
  call_js(l, LINK_ON_DATAGRAM, 3, argv);
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  link_t* l = (link_t*)h->data;
  if (l->s.closing) return;
  if (status < 0) {
    // libuv stops the poll on POLLERR; the socket's pending error says why (ICMP unreachable:
    // the peer is gone, and the session ends the transfer).
    report_error(l, nb_socket_take_error(&l->s, status));
    return;
  }
  if (events & UV_WRITABLE) {
    nb_socket_poll(&l->s, UV_READABLE, on_poll);
    call_js(l, LINK_ON_WRITABLE, 0, NULL);
    if (l->s.closing) return;
  }
  if (!(events & UV_READABLE)) return;
  for (int i = 0; i < RECV_BUDGET && !l->s.closing; i++) {
    ssize_t n = recv(l->s.fd, l->rx, l->rx_len, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      report_error(l, errno);
      return;
    }
    if (l->chain_pos < l->chain_len) {
      uint32_t i = l->chain_pos;
      if ((size_t)n == l->width && memcmp(l->rx, l->expects + (size_t)i * l->width, l->width) == 0) {
        uint32_t* run = l->runs + 3 * (size_t)i;
        ssize_t sent = send_run(l, l->run_buf + run[0], l->stride, run[1], run[2]);
        l->chain_pos++;
        l->fired++;
        if (sent < (ssize_t)run[1]) {
          // The kernel took less (full buffer) or failed: JS sends the rest and sees any error.
          l->chain_len = l->chain_pos;
          report(l, -1, sent < 0 ? 0 : sent);
        } else if (l->chain_pos == l->chain_len) {
          report(l, -1, -1);
        }
        // The peer is busy with what was just sent: a recv now would only say EAGAIN (one system
        // call per block in lock-step). The poll is level-triggered, so nothing queued is missed.
        return;
      }
      l->chain_len = l->chain_pos;  // any other datagram ends the chain
    }
    report(l, (int64_t)n, -1);
  }
}

// new UdpLink(bindAddress, peerAddress, peerPort, rx: Buffer, gso: boolean,
//             onDatagram(length), onError(message), onWritable())
static napi_value link_new(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 8) {
    napi_throw_type_error(env, NULL, "UdpLink: 8 arguments expected");
    return NULL;
  }
  struct sockaddr_in local = {.sin_family = AF_INET}, peer = {.sin_family = AF_INET};
  uint32_t port = 0;
  if (!nb_parse_ipv4(env, argv[0], &local.sin_addr) || !nb_parse_ipv4(env, argv[1], &peer.sin_addr) || napi_get_value_uint32(env, argv[2], &port) != napi_ok ||
      port == 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "UdpLink: IPv4 bind address, IPv4 peer address and peer port 1-65535 expected");
    return NULL;
  }
  peer.sin_port = htons((uint16_t)port);
  void* rx;
  size_t rx_len;
  bool gso = false;
  if (napi_get_buffer_info(env, argv[3], &rx, &rx_len) != napi_ok || rx_len == 0 || napi_get_value_bool(env, argv[4], &gso) != napi_ok) {
    napi_throw_type_error(env, NULL, "UdpLink: receive Buffer and gso flag expected");
    return NULL;
  }
  // Allocated before the socket exists: a failure leaves nothing to close.
  link_t* l = nb_calloc(1, sizeof *l);
  if (l == NULL) return nb_throw_errno(env, ENOMEM, "UdpLink");
  int fd = nb_bound_socket(env, &local, 0);
  if (fd < 0) {
    free(l);
    return NULL;
  }
  if (connect(fd, (struct sockaddr*)&peer, sizeof peer) != 0) {
    int e = errno;
    close(fd);
    free(l);
    return nb_throw_errno(env, e, "connect");
  }
  l->gso = gso;
  l->rx = rx;
  l->rx_len = rx_len;
  nb_socket_open(&l->s, env, self, "netboot:udp-link", fd, release_link, UV_READABLE, on_poll);
  nb_socket_hold(&l->s, LINK_RX, argv[3]);
  nb_socket_hold(&l->s, LINK_ON_DATAGRAM, argv[5]);
  nb_socket_hold(&l->s, LINK_ON_ERROR, argv[6]);
  nb_socket_hold(&l->s, LINK_ON_WRITABLE, argv[7]);
  return self;
}


link_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  return (link_t*)nb_socket_this(env, info, argc, argv, "UdpLink is closed");
}

link_t* unwrap_buffer(napi_env env, napi_callback_info info, const char* what, napi_value* arg, void** data, size_t* len) {
  size_t argc = 1;
  link_t* l = unwrap(env, info, &argc, arg);
  if (l == NULL) return NULL;
  if (argc < 1 || napi_get_buffer_info(env, *arg, data, len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  return l;
}

// send(buf): one datagram. Returns bytes sent, or -errno (EAGAIN: the kernel buffer is full).
static napi_value link_send(napi_env env, napi_callback_info info) {
  napi_value arg;
  void* data;
  size_t len;
  link_t* l = unwrap_buffer(env, info, "send: Buffer expected", &arg, &data, &len);
  if (l == NULL) return NULL;
  ssize_t n = send(l->s.fd, data, len, MSG_DONTWAIT);
  return nb_int(env, n < 0 ? -errno : n);
}


// sendRun(buf, offset, stride, count, finalLength): `count` datagrams laid out every `stride`
// bytes from `offset`, each `stride` long except the last (`finalLength`). Returns how many went
// out (fewer when the kernel buffer filled: ask for writable), or -errno when none could.
static napi_value link_send_run(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  link_t* l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  void* data;
  size_t len;
  uint32_t offset, stride, count, final_len;
  if (argc < 5 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || napi_get_value_uint32(env, argv[1], &offset) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &stride) != napi_ok || napi_get_value_uint32(env, argv[3], &count) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &final_len) != napi_ok || stride == 0 || stride > 65535 || count == 0 || final_len > stride ||
      (uint64_t)offset + (uint64_t)(count - 1) * stride + final_len > len) {
    napi_throw_range_error(env, NULL, "sendRun: run outside the buffer");
    return NULL;
  }
  return nb_int(env, send_run(l, (uint8_t*)data + offset, stride, count, final_len));
}

ssize_t send_run(link_t* l, uint8_t* base, size_t stride, size_t count, size_t final_len) {
  size_t done = 0;
  if (l->gso && count > 1 && stride * 2 <= MAX_UDP_PAYLOAD) {
    int err = 0;
    done = send_gso(l->s.fd, base, stride, count, final_len, &err);
    if (err == 0) return (ssize_t)done;
    if (err != EIO && err != EINVAL && err != ENOPROTOOPT && err != EOPNOTSUPP) return done > 0 && (err == EAGAIN || err == EWOULDBLOCK) ? (ssize_t)done : -err;
    // The route or device cannot segment (e.g. an xfrm route): batch with sendmmsg from now on,
    // starting with what GSO did not send (the datagrams before went out: never twice).
    l->gso = 0;
  }
  ssize_t r = send_mmsg(l->s.fd, base + done * stride, stride, count - done, final_len);
  if (r < 0) return done > 0 && (r == -EAGAIN || r == -EWOULDBLOCK) ? (ssize_t)done : r;
  return (ssize_t)done + r;
}

static napi_value link_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  nb_socket_poll(&l->s, UV_READABLE | UV_WRITABLE, on_poll);
  return NULL;
}

static napi_value link_close(napi_env env, napi_callback_info info) {
  nb_socket_t* s = nb_socket_this_any(env, info);
  if (s != NULL) nb_socket_close(s);
  return NULL;
}

static napi_value link_info(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(l->s.fd, (struct sockaddr*)&a, &alen);
  int sndbuf = 0;
  socklen_t slen = sizeof sndbuf;
  getsockopt(l->s.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &slen);
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_uint32(env, ntohs(a.sin_port), &v);
  napi_set_named_property(env, out, "port", v);
  napi_create_uint32(env, (uint32_t)sndbuf, &v);
  napi_set_named_property(env, out, "sendBufferSize", v);
  napi_get_boolean(env, l->gso, &v);
  napi_set_named_property(env, out, "gso", v);
  return out;
}

static napi_value link_set_send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t* l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  uint32_t bytes = 0;
  napi_get_value_uint32(env, argv[0], &bytes);
  int v = (int)(bytes > 0x7fffffff ? 0x7fffffff : bytes);
  setsockopt(l->s.fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);  // the kernel caps it at wmem_max
  return NULL;
}


// Whether this kernel takes UDP_SEGMENT on a UDP socket (Linux 4.18+).
static napi_value gso_supported(napi_env env, napi_callback_info info) {
  (void)info;
  if (gso_probe < 0) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int seg = 1400;
    gso_probe = fd >= 0 && setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) == 0;
    if (fd >= 0) close(fd);
  }
  napi_value v;
  napi_get_boolean(env, gso_probe, &v);
  return v;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"send", NULL, link_send, NULL, NULL, NULL, napi_default, NULL},
      {"sendRun", NULL, link_send_run, NULL, NULL, NULL, napi_default, NULL},
      {"setRunBuffer", NULL, link_set_run_buffer, NULL, NULL, NULL, napi_default, NULL},
      {"arm", NULL, link_arm, NULL, NULL, NULL, napi_default, NULL},
      {"disarm", NULL, link_disarm, NULL, NULL, NULL, napi_default, NULL},
      {"takeProgress", NULL, link_take_progress, NULL, NULL, NULL, napi_default, NULL},
      {"wantWritable", NULL, link_want_writable, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, link_close, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, link_info, NULL, NULL, NULL, napi_default, NULL},
      {"setSendBufferSize", NULL, link_set_send_buffer, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, fn;
  napi_define_class(env, "UdpLink", NAPI_AUTO_LENGTH, link_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "UdpLink", cls);
  napi_create_function(env, "gsoSupported", NAPI_AUTO_LENGTH, gso_supported, NULL, &fn);
  napi_set_named_property(env, exports, "gsoSupported", fn);
  napi_create_function(env, "readCached", NAPI_AUTO_LENGTH, read_cached, NULL, &fn);
  napi_set_named_property(env, exports, "readCached", fn);
  define_listener(env, exports);
  nb_define_faults(env, exports);
  return exports;
}
