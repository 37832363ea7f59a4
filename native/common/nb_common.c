// The helpers every addon shares (see nb_common.h).
#define _GNU_SOURCE
#include "nb_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

napi_value nb_throw_errno(napi_env env, int err, const char* what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char* code = err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == ENOMEM ? "ENOMEM" : "ESOCKET";
  napi_throw_error(env, code, msg);
  return NULL;
}

int nb_parse_ipv4(napi_env env, napi_value v, struct in_addr* out) {
  char s[64];
  size_t len;
  if (napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok) return 0;
  return inet_pton(AF_INET, s, out) == 1;
}

int nb_bound_socket(napi_env env, const struct sockaddr_in* local, int reuse_addr) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    nb_throw_errno(env, errno, "socket");
    return -1;
  }
  int on = 1;
  if (reuse_addr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, (const struct sockaddr*)local, sizeof *local) != 0) {
    int e = errno;
    close(fd);
    nb_throw_errno(env, e, "bind");
    return -1;
  }
  return fd;
}

void nb_call_js(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, napi_value* argv) {
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

napi_value nb_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

void* nb_calloc(size_t count, size_t size) {
  if (nb_fault(NB_FAULT_ALLOC)) return NULL;
  return calloc(count, size);
}

static void socket_closed(uv_handle_t* h) {
  nb_socket_t* s = (nb_socket_t*)h->data;
  s->closed = 1;
  if (s->unwrapped) s->release(s);
}

void nb_socket_close(nb_socket_t* s) {
  if (s->closing) return;
  s->closing = 1;
  for (int i = 0; i < NB_MAX_REFS; i++) {
    if (s->refs[i] != NULL) napi_delete_reference(s->env, s->refs[i]);
    s->refs[i] = NULL;
  }
  if (s->async != NULL) napi_async_destroy(s->env, s->async);
  s->async = NULL;
  // uv_poll_stop takes the fd out of epoll, so it can be closed now: the port is free as soon as
  // close() returns (a restart binds it again at once).
  uv_poll_stop(&s->poll);
  close(s->fd);
  s->fd = -1;
  uv_close((uv_handle_t*)&s->poll, socket_closed);
}

static void socket_finalize(napi_env env, void* data, void* hint) {
  (void)hint;
  nb_socket_t* s = (nb_socket_t*)data;
  s->env = env;
  nb_socket_close(s);
  s->unwrapped = 1;
  if (s->closed) s->release(s);
}

void nb_socket_open(nb_socket_t* s, napi_env env, napi_value self, const char* name, int fd, void (*release)(nb_socket_t*), int events, uv_poll_cb cb) {
  s->fd = fd;
  s->env = env;
  s->release = release;
  napi_value resource;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  napi_async_init(env, self, resource, &s->async);
  uv_loop_t* loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init_socket(loop, &s->poll, fd);
  s->poll.data = s;
  nb_socket_poll(s, events, cb);
  napi_wrap(env, self, s, socket_finalize, NULL, NULL);
}

void nb_socket_hold(nb_socket_t* s, int i, napi_value value) { napi_create_reference(s->env, value, 1, &s->refs[i]); }

void nb_socket_poll(nb_socket_t* s, int events, uv_poll_cb cb) {
  s->events = events;
  uv_poll_start(&s->poll, events, cb);
}

nb_socket_t* nb_socket_this_any(napi_env env, napi_callback_info info) {
  napi_value self;
  napi_get_cb_info(env, info, NULL, NULL, &self, NULL);
  nb_socket_t* s = NULL;
  if (napi_unwrap(env, self, (void**)&s) != napi_ok) return NULL;
  return s;
}

nb_socket_t* nb_socket_this(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, const char* closed_message) {
  napi_value self;
  napi_get_cb_info(env, info, argc, argv, &self, NULL);
  nb_socket_t* s = NULL;
  napi_unwrap(env, self, (void**)&s);
  if (s == NULL || s->closing) {
    napi_throw_error(env, "ERR_SOCKET_CLOSED", closed_message);
    return NULL;
  }
  return s;
}

void nb_socket_call_error(nb_socket_t* s, int fn, int err) {
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  napi_value text;
  napi_create_string_utf8(s->env, strerror(err), NAPI_AUTO_LENGTH, &text);
  nb_call_js(s->env, s->async, s->refs[fn], 1, &text);
  napi_close_handle_scope(s->env, scope);
}

int nb_socket_take_error(nb_socket_t* s, int status) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);  // reading it clears it
  // With IP_RECVERR the error waits on the error queue too, and keeps POLLERR up until read.
  for (int i = 0; i < 64; i++) {
    char control[512];
    struct msghdr msg = {.msg_control = control, .msg_controllen = sizeof control};
    if (recvmsg(s->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
  }
  return err != 0 ? err : -status;
}

static struct {
  uint32_t after;  // calls that pass before the fault fires
  uint32_t times;  // calls it fires on then
} faults[NB_FAULT_COUNT];

int nb_fault(enum nb_fault_kind kind) {
  if (__builtin_expect(faults[kind].times == 0, 1)) return 0;
  if (faults[kind].after > 0) {
    faults[kind].after--;
    return 0;
  }
  faults[kind].times--;
  return 1;
}

// injectFault(name, after, times = 1): fault `name` fires on `times` calls after `after` pass.
static napi_value inject_fault(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[16];
  size_t len;
  uint32_t after = 0, times = 1;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || napi_get_value_uint32(env, argv[1], &after) != napi_ok ||
      (argc > 2 && napi_get_value_uint32(env, argv[2], &times) != napi_ok)) {
    napi_throw_type_error(env, NULL, "injectFault(name, after, times) expected");
    return NULL;
  }
  int kind = strcmp(name, "alloc") == 0 ? NB_FAULT_ALLOC : strcmp(name, "gso") == 0 ? NB_FAULT_GSO : -1;
  if (kind < 0) {
    napi_throw_range_error(env, NULL, "injectFault: unknown fault (alloc, gso)");
    return NULL;
  }
  faults[kind].after = after;
  faults[kind].times = times;
  return NULL;
}

void nb_define_faults(napi_env env, napi_value exports) {
  const char* on = getenv("NETBOOT_NATIVE_FAULTS");
  if (on == NULL || strcmp(on, "1") != 0) return;
  napi_value fn;
  napi_create_function(env, "injectFault", NAPI_AUTO_LENGTH, inject_fault, NULL, &fn);
  napi_set_named_property(env, exports, "injectFault", fn);
}
