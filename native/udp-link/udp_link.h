// What the files of the addon share: the link, and the helpers they use.
#ifndef NETBOOT_UDP_LINK_H
#define NETBOOT_UDP_LINK_H
#include <node_api.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "../common/nb_common.h"

// The JS values a link holds (nb_socket_t.refs).
enum { LINK_ON_DATAGRAM, LINK_ON_ERROR, LINK_ON_WRITABLE, LINK_RX, LINK_RUN };

typedef struct {
  nb_socket_t s;  // first: the socket, its poll, its JS references (../common/nb_common.h)
  int gso;        // 1: send runs with UDP_SEGMENT, 0: sendmmsg
  uint8_t* rx;
  size_t rx_len;
  // The armed chain: step i fires on datagram expects[i*width..] and sends runs[3i..3i+2]
  // (offset in run_buf, count, final length). `fired`: steps taken not yet reported to JS.
  uint32_t chain_len, chain_pos, chain_cap, fired, width, stride;
  uint8_t* expects;
  uint32_t* runs;
  uint8_t* run_buf;
  size_t run_len;
} link_t;

// Adds the UdpListener class (listener.c) to the exports.
void define_listener(napi_env env, napi_value exports);

// The link behind `this`, or NULL (with a JS exception pending) when it is closed.
link_t* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv);
// unwrap() for a method whose one argument is a Buffer (`what` names it in the TypeError);
// `arg` receives the argument itself.
link_t* unwrap_buffer(napi_env env, napi_callback_info info, const char* what, napi_value* arg, void** data, size_t* len);
// Sends a run through GSO when the link may, else sendmmsg (see batch_send.h). When GSO fails
// part-way (a route that cannot segment), sendmmsg sends only what GSO did not.
ssize_t send_run(link_t* l, uint8_t* base, size_t stride, size_t count, size_t final_len);

napi_value link_set_run_buffer(napi_env env, napi_callback_info info);
napi_value link_arm(napi_env env, napi_callback_info info);
napi_value link_take_progress(napi_env env, napi_callback_info info);
napi_value link_disarm(napi_env env, napi_callback_info info);

#endif
