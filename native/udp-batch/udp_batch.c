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

#include "../common/nb_common.h"
#include "mmsg.h"

// recvmmsg calls per readable event (each one full) before yielding to the rest of the loop.
#define RECV_ROUNDS 4

// The JS values a socket holds (nb_socket_t.refs).
enum { BATCH_ON_BATCH, BATCH_ON_ERROR, BATCH_ON_WRITABLE, BATCH_RX, BATCH_RX_DESC, BATCH_TX, BATCH_TX_DESC };

typedef struct {
  nb_socket_t s;  // first: the socket, its poll, its JS references (../common/nb_common.h)
  int last_errno;
  rx_ring_t ring;
  uint32_t* rx_desc;
  uint8_t* tx;
  size_t tx_len;
  uint32_t* tx_desc;
  uint32_t tx_slots;
} batch_t;

static void release_batch(nb_socket_t* s) {
  batch_t* b = (batch_t*)s;
  rx_ring_free(&b->ring);
  free(b);
}

// Calls JS handler `fn` with one number. A thrown exception goes to process 'uncaughtException';
// the JS side guards every datagram, so that means a bug there.
static void call_with_int(batch_t* b, int fn, int64_t v) {
  napi_env env = b->s.env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value arg = nb_int(env, v);
  nb_call_js(env, b->s.async, b->s.refs[fn], 1, &arg);
  napi_close_handle_scope(env, scope);
}

static void on_poll(uv_poll_t* h, int status, int events) {
  batch_t* b = (batch_t*)h->data;
  if (b->s.closing) return;
  if (status < 0) {
    // libuv stops the poll on POLLERR; the socket's pending error says why. A server socket keeps
    // serving: report it and poll again.
    call_with_int(b, BATCH_ON_ERROR, nb_socket_take_error(&b->s, status));
    if (!b->s.closing) nb_socket_poll(&b->s, b->s.events, on_poll);
    return;
  }
  if (events & UV_WRITABLE) {
    nb_socket_poll(&b->s, UV_READABLE, on_poll);
    nb_call_js(b->s.env, b->s.async, b->s.refs[BATCH_ON_WRITABLE], 0, NULL);
    if (b->s.closing) return;
  }
  if (!(events & UV_READABLE)) return;
  for (int round = 0; round < RECV_ROUNDS && !b->s.closing; round++) {
    int n = rx_ring_recv(b->s.fd, &b->ring, b->rx_desc);
    if (n == -EINTR) continue;
    if (n == -EAGAIN || n == -EWOULDBLOCK || n == 0) return;
    if (n < 0) {
      call_with_int(b, BATCH_ON_ERROR, -n);
      return;
    }
    call_with_int(b, BATCH_ON_BATCH, n);
    // Fewer than the slots: the queue was empty a moment ago. The poll is level-triggered, so
    // what arrived since wakes us again without a recvmmsg that would only say EAGAIN.
    if ((uint32_t)n < b->ring.slots) return;
  }
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
  if (!nb_parse_ipv4(env, argv[0], &local.sin_addr) || napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 ||
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
  // Allocated before the socket exists: a failure leaves nothing to close.
  batch_t* b = nb_calloc(1, sizeof *b);
  if (b == NULL || rx_ring_init(&b->ring, rx, slot, (uint32_t)(rx_words / RX_WORDS)) != 0) {
    if (b != NULL) release_batch(&b->s);
    return nb_throw_errno(env, ENOMEM, "UdpBatch");
  }
  int fd = nb_bound_socket(env, &local, reuse);
  if (fd < 0) {
    release_batch(&b->s);
    return NULL;
  }
  // Replies on 67 go to 255.255.255.255 (a client without an address hears nothing else).
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
  b->rx_desc = rx_desc;
  b->tx = tx;
  b->tx_len = tx_len;
  b->tx_desc = tx_desc;
  b->tx_slots = (uint32_t)(tx_words / TX_WORDS);
  nb_socket_open(&b->s, env, self, "netboot:udp-batch", fd, release_batch, UV_READABLE, on_poll);
  // The buffers are held as long as the socket is: C writes into them after this call returns.
  nb_socket_hold(&b->s, BATCH_RX, argv[3]);
  nb_socket_hold(&b->s, BATCH_RX_DESC, argv[5]);
  nb_socket_hold(&b->s, BATCH_TX, argv[6]);
  nb_socket_hold(&b->s, BATCH_TX_DESC, argv[7]);
  nb_socket_hold(&b->s, BATCH_ON_BATCH, argv[8]);
  nb_socket_hold(&b->s, BATCH_ON_ERROR, argv[9]);
  nb_socket_hold(&b->s, BATCH_ON_WRITABLE, argv[10]);
  return self;
}

static batch_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  return (batch_t*)nb_socket_this(env, info, argc, argv, "UdpBatch is closed");
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
  return nb_int(env, tx_send(b->s.fd, b->tx, b->tx_len, b->tx_desc, start, end, &b->last_errno));
}

static napi_value batch_last_error(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  return nb_int(env, b->last_errno);
}

static napi_value batch_want_writable(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  nb_socket_poll(&b->s, UV_READABLE | UV_WRITABLE, on_poll);
  return NULL;
}

static napi_value batch_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  batch_t* b = unwrap(env, info, &argc, NULL);
  if (b == NULL) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(b->s.fd, (struct sockaddr*)&a, &alen);
  return nb_int(env, ntohs(a.sin_port));
}

static napi_value batch_close(napi_env env, napi_callback_info info) {
  nb_socket_t* s = nb_socket_this_any(env, info);
  if (s != NULL) nb_socket_close(s);
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
  nb_define_faults(env, exports);
  return exports;
}
