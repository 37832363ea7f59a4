// The TFTP port's socket (requests), owned here and polled on Node's libuv loop like the links.
// Why not node:dgram: a read request is the start of a machine's wait, and node:dgram's receive
// path (a Buffer and an rinfo object per datagram, an event emit) is most of what a trivial echo
// server costs in Node when its code and data have gone cold between requests. Here JS gets the
// length, the sender's IPv4 address as text and its port; the bytes are in the caller's buffer.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udp_link.h"

// Datagrams handled per readable event before yielding to the rest of the loop.
#define LISTEN_BUDGET 32

typedef struct {
  uv_poll_t poll;
  int fd;
  int closing, closed, unwrapped;
  napi_env env;
  napi_ref on_datagram, on_error, rx_ref;
  napi_async_context async;
  uint8_t* rx;
  size_t rx_len;
} listener_t;

static void listener_closed(uv_handle_t* h) {
  listener_t* s = (listener_t*)h->data;
  close(s->fd);
  s->closed = 1;
  if (s->unwrapped) free(s);
}

static void listener_close_now(listener_t* s) {
  if (s->closing) return;
  s->closing = 1;
  napi_ref* refs[] = {&s->on_datagram, &s->on_error, &s->rx_ref};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i] != NULL) napi_delete_reference(s->env, *refs[i]);
    *refs[i] = NULL;
  }
  if (s->async != NULL) napi_async_destroy(s->env, s->async);
  s->async = NULL;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t*)&s->poll, listener_closed);
}

static void call(listener_t* s, napi_ref fn_ref, size_t argc, napi_value* argv) {
  call_handler(s->env, s->async, fn_ref, argc, argv);
}

static void listener_poll(uv_poll_t* h, int status, int events) {
  listener_t* s = (listener_t*)h->data;
  if (s->closing) return;
  for (int i = 0; i < LISTEN_BUDGET && !s->closing; i++) {
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t n = status < 0 ? -1 : recvfrom(s->fd, s->rx, s->rx_len, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr*)&from, &from_len);
    napi_handle_scope scope;
    napi_open_handle_scope(s->env, &scope);
    if (n < 0) {
      int err = status < 0 ? -status : errno;
      if (err == EINTR) {
        napi_close_handle_scope(s->env, scope);
        continue;
      }
      if (err != EAGAIN && err != EWOULDBLOCK) {
        napi_value argv[1];
        napi_create_string_utf8(s->env, strerror(err), NAPI_AUTO_LENGTH, &argv[0]);
        call(s, s->on_error, 1, argv);
      }
      napi_close_handle_scope(s->env, scope);
      return;
    }
    char addr[INET_ADDRSTRLEN] = "0.0.0.0";
    inet_ntop(AF_INET, &from.sin_addr, addr, sizeof addr);
    napi_value argv[3];
    // A datagram longer than the buffer arrives cut; JS sees its real length and drops it.
    napi_create_int64(s->env, (int64_t)n, &argv[0]);
    napi_create_string_latin1(s->env, addr, NAPI_AUTO_LENGTH, &argv[1]);
    napi_create_uint32(s->env, ntohs(from.sin_port), &argv[2]);
    call(s, s->on_datagram, 3, argv);
    napi_close_handle_scope(s->env, scope);
  }
}

static void listener_finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  listener_t* s = (listener_t*)data;
  s->env = env;
  if (!s->closing) listener_close_now(s);
  s->unwrapped = 1;
  if (s->closed) free(s);
}

// new UdpListener(bindAddress, port, rx: Buffer, onDatagram(length, address, port), onError(message))
static napi_value listener_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  struct sockaddr_in local = {.sin_family = AF_INET};
  char a[64];
  size_t alen;
  uint32_t port = 0;
  void* rx;
  size_t rx_len;
  if (argc < 5 || napi_get_value_string_utf8(env, argv[0], a, sizeof a, &alen) != napi_ok || inet_pton(AF_INET, a, &local.sin_addr) != 1 ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 || napi_get_buffer_info(env, argv[2], &rx, &rx_len) != napi_ok || rx_len == 0) {
    napi_throw_type_error(env, NULL, "UdpListener: IPv4 bind address, port 0-65535 and a receive Buffer expected");
    return NULL;
  }
  local.sin_port = htons((uint16_t)port);
  int fd = bound_socket(env, &local);
  if (fd < 0) return NULL;
  listener_t* s = calloc(1, sizeof *s);
  s->fd = fd;
  s->env = env;
  s->rx = rx;
  s->rx_len = rx_len;
  napi_create_reference(env, argv[2], 1, &s->rx_ref);
  napi_create_reference(env, argv[3], 1, &s->on_datagram);
  napi_create_reference(env, argv[4], 1, &s->on_error);
  napi_value name;
  napi_create_string_utf8(env, "netboot:udp-listener", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, self, name, &s->async);
  start_polling(env, &s->poll, fd, s, UV_READABLE, listener_poll);
  napi_wrap(env, self, s, listener_finalize, NULL, NULL);
  return self;
}

static listener_t* this_listener(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  listener_t* s = NULL;
  napi_unwrap(env, self, (void**)&s);
  return s;
}

// port(): the bound port (the kernel's choice for port 0).
static napi_value listener_port(napi_env env, napi_callback_info info) {
  listener_t* s = this_listener(env, info);
  if (s == NULL || s->closing) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", "UdpListener is closed");
    return NULL;
  }
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(s->fd, (struct sockaddr*)&a, &alen);
  napi_value v;
  napi_create_uint32(env, ntohs(a.sin_port), &v);
  return v;
}

static napi_value listener_close(napi_env env, napi_callback_info info) {
  listener_t* s = this_listener(env, info);
  if (s != NULL) listener_close_now(s);
  return NULL;
}

void define_listener(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"port", NULL, listener_port, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, listener_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  napi_define_class(env, "UdpListener", NAPI_AUTO_LENGTH, listener_new, NULL, sizeof methods / sizeof methods[0], methods, &cls);
  napi_set_named_property(env, exports, "UdpListener", cls);
}
