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

// The JS values a listener holds (nb_socket_t.refs).
enum { LISTENER_ON_DATAGRAM, LISTENER_ON_ERROR, LISTENER_RX };

typedef struct {
  nb_socket_t s;  // first (../common/nb_common.h)
  uint8_t* rx;
  size_t rx_len;
} listener_t;

static void release_listener(nb_socket_t* s) { free(s); }

static void report_error(listener_t* s, int err) { nb_socket_call_error(&s->s, LISTENER_ON_ERROR, err); }

static void listener_poll(uv_poll_t* h, int status, int events) {
  listener_t* s = (listener_t*)h->data;
  if (s->s.closing) return;
  if (status < 0) {
    // libuv stops the poll on POLLERR. The TFTP port serves every machine that boots: report the
    // socket's error and poll again (the error is taken off the socket, so this does not spin).
    report_error(s, nb_socket_take_error(&s->s, status));
    if (!s->s.closing) nb_socket_poll(&s->s, UV_READABLE, listener_poll);
    return;
  }
  napi_env env = s->s.env;
  for (int i = 0; i < LISTEN_BUDGET && !s->s.closing; i++) {
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(s->s.fd, s->rx, s->rx_len, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr*)&from, &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) report_error(s, errno);
      return;
    }
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    char addr[INET_ADDRSTRLEN] = "0.0.0.0";
    inet_ntop(AF_INET, &from.sin_addr, addr, sizeof addr);
    napi_value argv[3];
    // A datagram longer than the buffer arrives cut; JS sees its real length and drops it.
    napi_create_int64(env, (int64_t)n, &argv[0]);
    napi_create_string_latin1(env, addr, NAPI_AUTO_LENGTH, &argv[1]);
    napi_create_uint32(env, ntohs(from.sin_port), &argv[2]);
    nb_call_js(env, s->s.async, s->s.refs[LISTENER_ON_DATAGRAM], 3, argv);
    napi_close_handle_scope(env, scope);
  }
}

// new UdpListener(bindAddress, port, rx: Buffer, onDatagram(length, address, port), onError(message))
static napi_value listener_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  napi_get_cb_info(env, info, &argc, argv, &self, NULL);
  struct sockaddr_in local = {.sin_family = AF_INET};
  uint32_t port = 0;
  void* rx;
  size_t rx_len;
  if (argc < 5 || !nb_parse_ipv4(env, argv[0], &local.sin_addr) || napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 || napi_get_buffer_info(env, argv[2], &rx, &rx_len) != napi_ok || rx_len == 0) {
    napi_throw_type_error(env, NULL, "UdpListener: IPv4 bind address, port 0-65535 and a receive Buffer expected");
    return NULL;
  }
  local.sin_port = htons((uint16_t)port);
  // Allocated before the socket exists: a failure leaves nothing to close.
  listener_t* s = nb_calloc(1, sizeof *s);
  if (s == NULL) return nb_throw_errno(env, ENOMEM, "UdpListener");
  int fd = nb_bound_socket(env, &local, 0);
  if (fd < 0) {
    free(s);
    return NULL;
  }
  s->rx = rx;
  s->rx_len = rx_len;
  nb_socket_open(&s->s, env, self, "netboot:udp-listener", fd, release_listener, UV_READABLE, listener_poll);
  nb_socket_hold(&s->s, LISTENER_RX, argv[2]);
  nb_socket_hold(&s->s, LISTENER_ON_DATAGRAM, argv[3]);
  nb_socket_hold(&s->s, LISTENER_ON_ERROR, argv[4]);
  return self;
}

// port(): the bound port (the kernel's choice for port 0).
static napi_value listener_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  nb_socket_t* s = nb_socket_this(env, info, &argc, NULL, "UdpListener is closed");
  if (s == NULL) return NULL;
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  getsockname(s->fd, (struct sockaddr*)&a, &alen);
  return nb_int(env, ntohs(a.sin_port));
}

static napi_value listener_close(napi_env env, napi_callback_info info) {
  nb_socket_t* s = nb_socket_this_any(env, info);
  if (s != NULL) nb_socket_close(s);
  return NULL;
}

// testProvokeError(port) (NETBOOT_NATIVE_FAULTS=1 only): a real socket error, as a flaky network
// makes one: IP_RECVERR on, one datagram from this socket to `port` on 127.0.0.1 where nobody
// listens; the ICMP port unreachable then waits on the socket's error queue, and the poll sees
// POLLERR.
static napi_value listener_provoke_error(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  nb_socket_t* s = nb_socket_this(env, info, &argc, argv, "UdpListener is closed");
  if (s == NULL) return NULL;
  uint32_t port = 0;
  napi_get_value_uint32(env, argv[0], &port);
  int on = 1;
  setsockopt(s->fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (sendto(s->fd, "x", 1, 0, (struct sockaddr*)&to, sizeof to) < 0) return nb_throw_errno(env, errno, "testProvokeError");
  return NULL;
}

void define_listener(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"port", NULL, listener_port, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, listener_close, NULL, NULL, NULL, napi_default, NULL},
      {"testProvokeError", NULL, listener_provoke_error, NULL, NULL, NULL, napi_default, NULL},
  };
  const char* faults = getenv("NETBOOT_NATIVE_FAULTS");
  size_t count = sizeof methods / sizeof methods[0] - (faults != NULL && strcmp(faults, "1") == 0 ? 0 : 1);
  napi_value cls;
  napi_define_class(env, "UdpListener", NAPI_AUTO_LENGTH, listener_new, NULL, count, methods, &cls);
  napi_set_named_property(env, exports, "UdpListener", cls);
}
