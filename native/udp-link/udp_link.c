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

napi_value throw_errno(napi_env env, int err, const char* what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char* code = err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : "ESOCKET";
  napi_throw_error(env, code, msg);
  return NULL;
}

static void free_link(link_t* l) {
  free(l->expects);
  free(l->runs);
  free(l);
}

static void on_closed(uv_handle_t* h) {
  link_t* l = (link_t*)h->data;
  close(l->fd);
  l->closed = 1;
  if (l->unwrapped) free_link(l);
}

static void drop_refs(link_t* l) {
  napi_ref* refs[] = {&l->on_datagram, &l->on_error, &l->on_writable, &l->rx_ref, &l->run_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(l->env, *refs[i]);
    *refs[i] = NULL;
  }
  if (l->async != NULL) napi_async_destroy(l->env, l->async);
  l->async = NULL;
}

static void close_link(link_t* l) {
  if (l->closing) return;
  l->closing = 1;
  drop_refs(l);
  uv_poll_stop(&l->poll);
  uv_close((uv_handle_t*)&l->poll, on_closed);
}

void call_handler(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, napi_value* argv) {
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, result;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &recv);  // MakeCallback needs an object receiver
  if (napi_make_callback(env, async, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void call_js(link_t* l, napi_ref fn_ref, size_t argc, napi_value* argv) {
  call_handler(l->env, l->async, fn_ref, argc, argv);
}

int bound_socket(napi_env env, const struct sockaddr_in* local) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return -1;
  }
  if (bind(fd, (const struct sockaddr*)local, sizeof *local) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, "bind");
    return -1;
  }
  return fd;
}

void start_polling(napi_env env, uv_poll_t* poll, int fd, void* data, int events, uv_poll_cb cb) {
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init_socket(loop, poll, fd);
  poll->data = data;
  uv_poll_start(poll, events, cb);
}

static void report_error(link_t* l, int err) {
  napi_handle_scope scope;
  napi_open_handle_scope(l->env, &scope);
  napi_value argv[1];
  napi_create_string_utf8(l->env, strerror(err), NAPI_AUTO_LENGTH, &argv[0]);
  call_js(l, l->on_error, 1, argv);
  napi_close_handle_scope(l->env, scope);
}

// onDatagram(length, steps, lastSent): first the chain steps fired since the last report (the
// last one sent only `lastSent` blocks when >= 0), then the datagram itself (length -1: none).
static void report(link_t* l, int64_t length, int64_t last_sent) {
  napi_handle_scope scope;
  napi_open_handle_scope(l->env, &scope);
  napi_value argv[3];
  napi_create_int64(l->env, length, &argv[0]);
  napi_create_uint32(l->env, l->fired, &argv[1]);
  napi_create_int64(l->env, last_sent, &argv[2]);
  l->fired = 0;
  call_js(l, l->on_datagram, 3, argv);
  napi_close_handle_scope(l->env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  link_t* l = (link_t*)h->data;
  if (l->closing) return;
  if (status < 0) {
    // libuv stops the poll on POLLERR; the socket's pending error says why (ICMP unreachable).
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    report_error(l, err != 0 ? err : -status);
    return;
  }
  if (events & UV_WRITABLE) {
    l->events = UV_READABLE;
    uv_poll_start(&l->poll, l->events, on_poll);
    call_js(l, l->on_writable, 0, NULL);
    if (l->closing) return;
  }
  if (!(events & UV_READABLE)) return;
  for (int i = 0; i < RECV_BUDGET && !l->closing; i++) {
    ssize_t n = recv(l->fd, l->rx, l->rx_len, MSG_DONTWAIT);
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

static void finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  link_t* l = (link_t*)data;
  l->env = env;
  if (!l->closing) close_link(l);
  l->unwrapped = 1;
  if (l->closed) free_link(l);
}

static int parse_ipv4(napi_env env, napi_value v, struct in_addr* out) {
  char s[64];
  size_t len;
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok) return 0;
  return inet_pton(AF_INET, s, out) == 1;
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
  if (!parse_ipv4(env, argv[0], &local.sin_addr) || !parse_ipv4(env, argv[1], &peer.sin_addr) || napi_get_value_uint32(env, argv[2], &port) != napi_ok ||
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
  int fd = bound_socket(env, &local);
  if (fd < 0) return NULL;
  if (connect(fd, (struct sockaddr*)&peer, sizeof peer) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "connect");
  }
  link_t* l = calloc(1, sizeof *l);
  l->fd = fd;
  l->gso = gso;
  l->env = env;
  l->rx = rx;
  l->rx_len = rx_len;
  napi_create_reference(env, argv[3], 1, &l->rx_ref);
  napi_create_reference(env, argv[5], 1, &l->on_datagram);
  napi_create_reference(env, argv[6], 1, &l->on_error);
  napi_create_reference(env, argv[7], 1, &l->on_writable);
  napi_value name;
  napi_create_string_utf8(env, "netboot:udp-link", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &l->async);
  l->events = UV_READABLE;
  start_polling(env, &l->poll, fd, l, l->events, on_poll);
  napi_wrap(env, self, l, finalize, NULL, NULL);
  return self;
}


link_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  link_t* l = NULL;
  napi_unwrap(env, self, (void**)&l);
  if (l == NULL || l->closing) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "UdpLink is closed");
    return NULL;
  }
  return l;
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

static napi_value int_value(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

// send(buf): one datagram. Returns bytes sent, or -errno (EAGAIN: the kernel buffer is full).
static napi_value link_send(napi_env env, napi_callback_info info) {
  napi_value arg;
  void* data;
  size_t len;
  link_t* l = unwrap_buffer(env, info, "send: Buffer expected", &arg, &data, &len);
  if (l == NULL) return NULL;
  ssize_t n = send(l->fd, data, len, MSG_DONTWAIT);
  return int_value(env, n < 0 ? -errno : n);
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
  return int_value(env, send_run(l, (uint8_t*)data + offset, stride, count, final_len));
}

ssize_t send_run(link_t* l, uint8_t* base, size_t stride, size_t count, size_t final_len) {
  if (l->gso && count > 1 && stride * 2 <= MAX_UDP_PAYLOAD) {
    ssize_t r = send_gso(l->fd, base, stride, count, final_len);
    if (r != -EIO && r != -EINVAL && r != -ENOPROTOOPT && r != -EOPNOTSUPP) return r;
    // The route or device cannot segment (e.g. an xfrm route): batch with sendmmsg from now on.
    l->gso = 0;
  }
  return send_mmsg(l->fd, base, stride, count, final_len);
}

static napi_value link_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  l->events = UV_READABLE | UV_WRITABLE;
  uv_poll_start(&l->poll, l->events, on_poll);
  return NULL;
}

static napi_value link_close(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  link_t* l = NULL;
  napi_unwrap(env, self, (void**)&l);
  if (l != NULL) close_link(l);
  return NULL;
}

static napi_value link_info(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(l->fd, (struct sockaddr*)&a, &alen);
  int sndbuf = 0;
  socklen_t slen = sizeof sndbuf;
  getsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &slen);
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
  setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);  // the kernel caps it at wmem_max
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
  return exports;
}
