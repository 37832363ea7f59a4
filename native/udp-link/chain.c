// Chains of predicted turns (see udp_link.c): JS arms them, on_poll takes them.
#include <stdlib.h>
#include <string.h>

#include "udp_link.h"

// setRunBuffer(buf): the buffer armed runs are taken from (kept alive while set).
napi_value link_set_run_buffer(napi_env env, napi_callback_info info) {
  napi_value arg;
  void* data;
  size_t len;
  link_t* l = unwrap_buffer(env, info, "setRunBuffer: Buffer expected", &arg, &data, &len);
  if (l == NULL) return NULL;
  if (l->s.refs[LINK_RUN] != NULL) napi_delete_reference(env, l->s.refs[LINK_RUN]);
  nb_socket_hold(&l->s, LINK_RUN, arg);
  l->run_buf = data;
  l->run_len = len;
  l->chain_len = l->chain_pos = 0;
  return NULL;
}

// arm(expects, width, runs: Uint32Array [offset, count, finalLength]*, steps, stride): a chain
// of predicted turns (see the top of the file). Replaces any chain armed before.
napi_value link_arm(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  link_t* l = unwrap(env, info, &argc, argv);
  if (l == NULL) return NULL;
  void* expects;
  size_t expects_len, runs_len;
  void* runs;
  napi_typedarray_type type;
  uint32_t width, steps, stride;
  if (argc < 5 || napi_get_buffer_info(env, argv[0], &expects, &expects_len) != napi_ok || napi_get_value_uint32(env, argv[1], &width) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &type, &runs_len, &runs, NULL, NULL) != napi_ok || type != napi_uint32_array ||
      napi_get_value_uint32(env, argv[3], &steps) != napi_ok || napi_get_value_uint32(env, argv[4], &stride) != napi_ok || width == 0 || steps == 0 ||
      (uint64_t)width * steps > expects_len || (uint64_t)steps * 3 > runs_len || stride == 0 || stride > 65535 || l->run_buf == NULL) {
    napi_throw_range_error(env, NULL, "arm: bad chain");
    return NULL;
  }
  const uint32_t* r = runs;
  for (uint32_t i = 0; i < steps; i++) {
    uint32_t offset = r[3 * i], count = r[3 * i + 1], final_len = r[3 * i + 2];
    if (count == 0 || final_len > stride || (uint64_t)offset + (uint64_t)(count - 1) * stride + final_len > l->run_len) {
      napi_throw_range_error(env, NULL, "arm: run outside the run buffer");
      return NULL;
    }
  }
  if (width > 16) {
    napi_throw_range_error(env, NULL, "arm: datagram wider than 16 bytes");
    return NULL;
  }
  if (steps > l->chain_cap) {
    uint8_t* e = realloc(l->expects, (size_t)steps * 16);
    if (e != NULL) l->expects = e;
    uint32_t* rr = realloc(l->runs, (size_t)steps * 3 * sizeof(uint32_t));
    if (rr != NULL) l->runs = rr;
    if (e == NULL || rr == NULL) {
      napi_throw_error(env, NULL, "arm: out of memory");
      return NULL;
    }
    l->chain_cap = steps;
  }
  memcpy(l->expects, expects, (size_t)width * steps);
  memcpy(l->runs, runs, (size_t)steps * 3 * sizeof(uint32_t));
  l->width = width;
  l->stride = stride;
  l->chain_len = steps;
  l->chain_pos = 0;
  return NULL;
}

// takeProgress(): chain steps fired since the last report; the chain goes on.
napi_value link_take_progress(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  uint32_t fired = l->fired;
  l->fired = 0;
  napi_value v;
  napi_create_uint32(env, fired, &v);
  return v;
}

// disarm(): ends the chain; returns the steps fired since the last report.
napi_value link_disarm(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  link_t* l = unwrap(env, info, &argc, NULL);
  if (l == NULL) return NULL;
  l->chain_len = l->chain_pos = 0;
  uint32_t fired = l->fired;
  l->fired = 0;
  napi_value v;
  napi_create_uint32(env, fired, &v);
  return v;
}

