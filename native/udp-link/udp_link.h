// What the files of the addon share: the link, and the helpers they use.
#ifndef NETBOOT_UDP_LINK_H
#define NETBOOT_UDP_LINK_H
#include <node_api.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct {
  uv_poll_t poll;
  int fd;
  int gso;        // 1: send runs with UDP_SEGMENT, 0: sendmmsg
  int closing;    // close() was called: uv_close is under way or done
  int closed;     // the uv close callback ran (fd closed)
  int unwrapped;  // the JS object was collected
  int events;     // events the poll is started for
  napi_env env;
  napi_ref on_datagram, on_error, on_writable, rx_ref;
  napi_async_context async;
  uint8_t* rx;
  size_t rx_len;
  // The armed chain: step i fires on datagram expects[i*width..] and sends runs[3i..3i+2]
  // (offset in run_buf, count, final length). `fired`: steps taken not yet reported to JS.
  uint32_t chain_len, chain_pos, chain_cap, fired, width, stride;
  uint8_t* expects;
  uint32_t* runs;
  napi_ref run_ref;
  uint8_t* run_buf;
  size_t run_len;
} link_t;

// Throws a JS Error for errno `err` (code EADDRINUSE, EADDRNOTAVAIL, EACCES or ESOCKET); returns NULL.
napi_value throw_errno(napi_env env, int err, const char* what);
struct sockaddr_in;
// A non-blocking UDP socket bound to `local`, or -1 with a JS exception pending.
int bound_socket(napi_env env, const struct sockaddr_in* local);
// Calls a JS handler as a top-level callback (microtasks and nextTicks run after it, as for any
// I/O callback). A thrown exception goes to process 'uncaughtException', like any other.
void call_handler(napi_env env, napi_async_context async, napi_ref fn_ref, size_t argc, napi_value* argv);
// Starts polling `fd` on Node's loop for `events`, with `data` on the handle.
void start_polling(napi_env env, uv_poll_t* poll, int fd, void* data, int events, uv_poll_cb cb);
// Adds the UdpListener class (listener.c) to the exports.
void define_listener(napi_env env, napi_value exports);

// The link behind `this`, or NULL (with a JS exception pending) when it is closed.
link_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv);
// unwrap() for a method whose one argument is a Buffer (`what` names it in the TypeError);
// `arg` receives the argument itself.
link_t* unwrap_buffer(napi_env env, napi_callback_info info, const char* what, napi_value* arg, void** data, size_t* len);
// Sends a run through GSO when the link may, else sendmmsg (see batch_send.h).
ssize_t send_run(link_t* l, uint8_t* base, size_t stride, size_t count, size_t final_len);

napi_value link_set_run_buffer(napi_env env, napi_callback_info info);
napi_value link_arm(napi_env env, napi_callback_info info);
napi_value link_take_progress(napi_env env, napi_callback_info info);
napi_value link_disarm(napi_env env, napi_callback_info info);

#endif
