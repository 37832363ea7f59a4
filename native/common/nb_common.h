// What the three addons (udp-link, udp-batch, chunking) share: errors thrown to JS, calls into
// JS from the loop, IPv4 text, a socket polled on Node's own libuv loop and owned by a JS object
// (its close and finalize), and the test-only faults (NETBOOT_NATIVE_FAULTS=1) that let tests
// reach the failure paths a loopback socket never takes: an allocation that fails, a GSO send
// that fails part-way. Each binding.gyp compiles nb_common.c into its addon.
#ifndef NETBOOT_NB_COMMON_H
#define NETBOOT_NB_COMMON_H
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct in_addr;
struct sockaddr_in;

// Throws a JS Error for errno `err`, "<what>: <strerror>", with code EADDRNOTAVAIL, EADDRINUSE,
// EACCES, ENOMEM or ESOCKET; returns NULL (for `return nb_throw_errno(...)`).
napi_value nb_throw_errno(napi_env env, int err, const char* what);
// An IPv4 address in dotted text, as inet_pton takes it. 1 on success.
int nb_parse_ipv4(napi_env env, napi_value v, struct in_addr* out);
// A non-blocking UDP socket bound to `local` (SO_REUSEADDR first when `reuse_addr`), or -1 with a
// JS exception pending.
int nb_bound_socket(napi_env env, const struct sockaddr_in* local, int reuse_addr);
// Calls a JS handler as a top-level callback (microtasks and nextTicks run after it, as for any
// I/O callback). A thrown exception goes to process 'uncaughtException', like any other.
void nb_call_js(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, napi_value* argv);
// napi_create_int64, for one-liners.
napi_value nb_int(napi_env env, int64_t v);

// calloc, except that it fails when a test asked for it (nb_fault "alloc").
void* nb_calloc(size_t count, size_t size);

// References an addon's socket holds: up to this many JS values (callbacks, shared buffers).
#define NB_MAX_REFS 8

// A socket owned by a JS object and polled on Node's loop. Embedded first in each addon's own
// struct. Life: nb_socket_open, then close() from JS or the JS object's collection (finalize),
// whichever first, closes it: the JS references go, the fd is closed at once (so a port is free
// again as close returns) and the uv handle a loop turn later; the struct is freed (`release`)
// once both the handle is closed and the JS object is gone.
typedef struct nb_socket {
  uv_poll_t poll;
  int fd;
  int closing;    // closed from JS or by finalize: no more callbacks, the fd is closed
  int closed;     // the uv close callback ran
  int unwrapped;  // the JS object was collected
  int events;     // the events the poll is started for
  napi_env env;
  napi_async_context async;
  napi_ref refs[NB_MAX_REFS];
  void (*release)(struct nb_socket*);
} nb_socket_t;

// Takes ownership of `fd` into `s` (zeroed by the caller): async context named `name`, JS object
// `self` wrapped, polling started for `events` with `cb`. `release` frees the containing struct.
void nb_socket_open(nb_socket_t* s, napi_env env, napi_value self, const char* name, int fd, void (*release)(nb_socket_t*), int events, uv_poll_cb cb);
// Holds `value` as reference `i` until the socket closes.
void nb_socket_hold(nb_socket_t* s, int i, napi_value value);
// Polls for `events` from now on (restarts a poll libuv stopped on POLLERR).
void nb_socket_poll(nb_socket_t* s, int events, uv_poll_cb cb);
// close() from JS; idempotent.
void nb_socket_close(nb_socket_t* s);
// The socket wrapped by the `this` of a method call, or NULL (with ERR_SOCKET_CLOSED thrown, as
// `what` is closed) when it is closed. argc/argv as for napi_get_cb_info.
nb_socket_t* nb_socket_this(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv, const char* closed_message);
// The wrapped socket of `this` even when closed (close() takes it), or NULL.
nb_socket_t* nb_socket_this_any(napi_env env, napi_callback_info info);
// Calls the JS handler held as reference `fn` with the C library's text for errno `err`.
void nb_socket_call_error(nb_socket_t* s, int fn, int err);
// The pending error of a socket whose poll libuv stopped on POLLERR (status < 0): SO_ERROR, and
// anything queued on the error queue (IP_RECVERR) drained, so that polling again does not
// wake at once. Returns the errno to report.
int nb_socket_take_error(nb_socket_t* s, int status);

// Test-only faults, armed from JS with the addon's injectFault(name, n) when the process was
// started with NETBOOT_NATIVE_FAULTS=1 (otherwise injectFault is not there):
//   "alloc": the next n nb_calloc calls fail;
//   "gso": the n-th GSO sendmsg from now fails with EIO (as a route that cannot segment does).
enum nb_fault_kind { NB_FAULT_ALLOC, NB_FAULT_GSO, NB_FAULT_COUNT };
// 1 when fault `kind` fires now (counts its arming down).
int nb_fault(enum nb_fault_kind kind);
// Adds injectFault(name, n) to `exports` when NETBOOT_NATIVE_FAULTS=1.
void nb_define_faults(napi_env env, napi_value exports);

#endif
