// udp_batch: one UDP server socket (bound to an address and port, SO_BROADCAST on), owned here and
// polled on Node's own libuv loop (no threads), for the proxyDHCP server's ports 67 and 4011. What
// it does is what node:dgram does slowly per datagram:
//   - on readable, one recvmmsg drains up to `slots` datagrams into the caller's receive buffer
//     (slot i at i * slot bytes) and JS hears of all of them in one call, onBatch(count), their
//     lengths and source addresses in a shared Uint32Array: no Buffer, rinfo object or libuv
//     callback per datagram;
//   - replies laid out by JS in a send buffer, with destinations in a second shared Uint32Array,
//     leave with sendmmsg, many per system call (flush).
// This file does not know what DHCP is: decoding, policy and where replies go stay in TypeScript
// (services/server/batch-socket.ts). The system calls themselves: mmsg.c.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "mmsg.h"

// recvmmsg calls per readable event (each one full) before yielding to the rest of the loop.
#define RECV_ROUNDS 4

typedef struct {
  uv_poll_t poll;
  int fd;
  int closing;    // close() was called (the fd is closed at once, the handle a loop turn later)
  int closed;     // the uv close callback ran
  int unwrapped;  // the JS object was collected
  int events;     // events the poll is started for
  int last_errno;
  napi_env env;
  napi_ref on_batch, on_error, on_writable, rx_ref, rx_desc_ref, tx_ref, tx_desc_ref;
  napi_async_context async;
  rx_ring_t ring;
  uint32_t* rx_desc;
  uint8_t* tx;
  size_t tx_len;
  uint32_t* tx_desc;
  uint32_t tx_slots;
} batch_t;

static napi_value throw_errno(napi_env env, int err, const char* what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char* code = err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : "ESOCKET";
  napi_throw_error(env, code, msg);
  return NULL;
}

static void free_batch(batch_t* b) {
  rx_ring_free(&b->ring);
  free(b);
}

static void on_closed(uv_handle_t* h) {
  batch_t* b = (batch_t*)h->data;
  b->closed = 1;
  if (b->unwrapped) free_batch(b);
}

static void close_batch(batch_t* b) {
  if (b->closing) return;
  b->closing = 1;
  napi_ref* refs[] = {&b->on_batch, &b->on_error, &b->on_writable, &b->rx_ref, &b->rx_desc_ref, &b->tx_ref, &b->tx_desc_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(b->env, *refs[i]);
    *refs[i] = NULL;
  }
  if (b->async != NULL) napi_async_destroy(b->env, b->async);
  b->async = NULL;
  // uv_poll_stop takes the fd out of epoll, so it can be closed now: the port is free as soon as
  // close() returns (a restart binds it again at once).
  uv_poll_stop(&b->poll);
  close(b->fd);
  uv_close((uv_handle_t*)&b->poll, on_closed);
}

// Calls a JS handler as a top-level callback (microtasks and nextTicks run after it, as for any
// I/O callback). A thrown exception goes to process 'uncaughtException', like any other; the JS
// side guards every datagram, so that means a bug there.
static void call_js(batch_t* b, napi_ref fn_ref, size_t argc, napi_value* argv) {
  napi_env env = b->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value fn, recv, result;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &recv);  // MakeCallback needs an object receiver
  if (napi_make_callback(env, b->async, recv, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

static void call_with_int(batch_t* b, napi_ref fn_ref, int64_t v) {
  napi_handle_scope scope;
  napi_open_handle_scope(b->env, &scope);
  napi_value arg;
  napi_create_int64(b->env, v, &arg);
  call_js(b, fn_ref, 1, &arg);
  napi_close_handle_scope(b->env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  batch_t* b = (batch_t*)h->data;
  if (b->closing) return;
  if (status < 0) {
    // libuv stops the poll on POLLERR; the socket's pending error says why. A server socket keeps
    // serving: report it and poll again.
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    call_with_int(b, b->on_error, err != 0 ? err : -status);
    if (!b->closing) uv_poll_start(&b->poll, b->events, on_poll);
    return;
  }
  if (events & UV_WRITABLE) {
    b->events = UV_READABLE;
    uv_poll_start(&b->poll, b->events, on_poll);
    call_js(b, b->on_writable, 0, NULL);
    if (b->closing) return;
  }
  if (!(events & UV_READABLE)) return;
  for (int round = 0; round < RECV_ROUNDS && !b->closing; round++) {
    int n = rx_ring_recv(b->fd, &b->ring, b->rx_desc);
    if (n == -EINTR) continue;
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0) return;
    if (n < 0) {
      call_with_int(b, b->on_error, -n);
      return;
    }
    call_with_int(b, b->on_batch, n);
    // Fewer than the slots: the queue was empty a moment ago. The poll is level-triggered, so
    // what arrived since wakes us again without a recvmmsg that would only say EAGAIN.
    if ((uint32_t)n < b->ring.slots) return;
  }
}

static void finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  batch_t* b = (batch_t*)data;
  b->env = env;
  if (!b->closing) close_batch(b);
  b->unwrapped = 1;
  if (b->closed) free_batch(b);
}

static int parse_ipv4(napi_env env, napi_value v, struct in_addr* out) {
  char s[64];
  size_t len;
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok) return 0;
  return inet_pton(AF_INET, s, out) == 1;
}

static int uint32_array(napi_env env, napi_value v, uint32_t** data, size_t* length) {
  bool is;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, (void**)data, NULL, NULL) != napi_ok) return 0;
  return type == napi_uint32_array;
}

// new UdpBatch(address, port, reuseAddr, rx: Buffer, slot, rxDesc: Uint32Array, tx: Buffer,
//              txDesc: Uint32Array, onBatch(count), onError(errno), onWritable())
// rxDesc holds RX_WORDS words per slot (its length / RX_WORDS is the slot count), txDesc
// TX_WORDS per datagram to send.
static napi_value batch_new(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  if (argc < 11) {
    napi_throw_type_error(env, NULL, "UdpBatch: 11 arguments expected");
    return NULL;
  }
  struct sockaddr_in local = {.sin_family = AF_INET};
  uint32_t port = 0, slot = 0;
  bool reuse = false;
  if (!parse_ipv4(env, argv[0], &local.sin_addr) || napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 ||
      napi_get_value_bool(env, argv[2], &reuse) != napi_ok) {
    napi_throw_type_error(env, NULL, "UdpBatch: IPv4 bind address, port 0-65535 and reuseAddr flag expected");
    return NULL;
  }
  local.sin_port = htons((uint16_t)port);
  void *rx, *tx;
  size_t rx_len, tx_len, rx_words, tx_words;
  uint32_t *rx_desc, *tx_desc;
  if (napi_get_buffer_info(env, argv[3], &rx, &rx_len) != napi_ok || napi_get_value_uint32(env, argv[4], &slot) != napi_ok ||
      !uint32_array(env, argv[5], &rx_desc, &rx_words) || napi_get_buffer_info(env, argv[6], &tx, &tx_len) != napi_ok ||
      !uint32_array(env, argv[7], &tx_desc, &tx_words) || slot == 0 || rx_words < RX_WORDS || tx_words < TX_WORDS ||
      (uint64_t)slot * (rx_words / RX_WORDS) > rx_len) {
    napi_throw_range_error(env, NULL, "UdpBatch: receive Buffer, slot size, receive descriptors, send Buffer and send descriptors that fit expected");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int on = 1;
  if (reuse) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, (struct sockaddr*)&local, sizeof local) != 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "bind");
  }
  // Replies on 67 go to 255.255.255.255 (a client without an address hears nothing else).
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
  batch_t* b = calloc(1, sizeof *b);
  if (b == NULL || rx_ring_init(&b->ring, rx, slot, (uint32_t)(rx_words / RX_WORDS)) != 0) {
    close(fd);
    if (b != NULL) free_batch(b);
    return throw_errno(env, ENOMEM, "UdpBatch");
  }
  b->fd = fd;
  b->env = env;
  b->rx_desc = rx_desc;
  b->tx = tx;
  b->tx_len = tx_len;
  b->tx_desc = tx_desc;
  b->tx_slots = (uint32_t)(tx_words / TX_WORDS);
  // The buffers are held as long as the socket is: C writes into them after this call returns.
  napi_create_reference(env, argv[3], 1, &b->rx_ref);
  napi_create_reference(env, argv[5], 1, &b->rx_desc_ref);
  napi_create_reference(env, argv[6], 1, &b->tx_ref);
  napi_create_reference(env, argv[7], 1, &b->tx_desc_ref);
  napi_create_reference(env, argv[8], 1, &b->on_batch);
  napi_create_reference(env, argv[9], 1, &b->on_error);
  napi_create_reference(env, argv[10], 1, &b->on_writable);
  napi_value name;
  napi_create_string_utf8(env, "netboot:udp-batch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &b->async);
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init_socket(loop, &b->poll, fd);
  b->poll.data = b;
  b->events = UV_READABLE;
  uv_poll_start(&b->poll, b->events, on_poll);
  napi_wrap(env, self, b, finalize, NULL, NULL);
  return self;
}

static batch_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  batch_t* b = NULL;
  napi_unwrap(env, self, (void**)&b);
  if (b == NULL || b->closing) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "UdpBatch is closed");
    return NULL;
  }
  return b;
}

static napi_value int_value(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

// flush(start, end): sends send descriptors [start, end). Returns where it stopped: `end` when
// all went out, less when the kernel buffer filled (wantWritable, then flush the rest), or
// -(index + 1) when the datagram at index was refused (lastError() says why; the ones before it
// went out).
static napi_value batch_flush(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  batch_t* b = unwrap(env, info, &argc, argv);
  if (b == NULL) return NULL;
  uint32_t start, end;
  if (argc < 2 || napi_get_value_uint32(env, argv[0], &start) != napi_ok || napi_get_value_uint32(env, argv[1], &end) != napi_ok || start > end ||
      end > b->tx_slots) {
    napi_throw_range_error(env, NULL, "flush: descriptors outside the send descriptor array");
    return NULL;
  }
  return int_value(env, tx_send(b->fd, b->tx, b->tx_len, b->tx_desc, start, end, &b->last_errno));
}

static napi_value batch_last_error(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  return int_value(env, b->last_errno);
}

static napi_value batch_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  b->events = UV_READABLE | UV_WRITABLE;
  uv_poll_start(&b->poll, b->events, on_poll);
  return NULL;
}

static napi_value batch_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(b->fd, (struct sockaddr*)&a, &alen);
  return int_value(env, ntohs(a.sin_port));
}

static napi_value batch_close(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  batch_t* b = NULL;
  napi_unwrap(env, self, (void**)&b);
  if (b != NULL) close_batch(b);
  return NULL;
}

// errorText(errno): the C library's text for an errno this addon reported.
static napi_value error_text(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t e = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &e) != napi_ok) e = 0;
  napi_create_string_utf8(env, strerror(e), NAPI_AUTO_LENGTH, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"flush", NULL, batch_flush, NULL, NULL, NULL, napi_default, NULL},
      {"lastError", NULL, batch_last_error, NULL, NULL, NULL, napi_default, NULL},
      {"wantWritable", NULL, batch_want_writable, NULL, NULL, NULL, napi_default, NULL},
      {"port", NULL, batch_port, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, batch_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, fn, v;
  napi_define_class(env, "UdpBatch", NAPI_AUTO_LENGTH, batch_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "UdpBatch", cls);
  napi_create_function(env, "errorText", NAPI_AUTO_LENGTH, error_text, NULL, &fn);
  napi_set_named_property(env, exports, "errorText", fn);
  napi_create_uint32(env, RX_WORDS, &v);
  napi_set_named_property(env, exports, "RX_WORDS", v);
  napi_create_uint32(env, TX_WORDS, &v);
  napi_set_named_property(env, exports, "TX_WORDS", v);
  return exports;
}
