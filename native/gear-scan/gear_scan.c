// The gear-hash scan of the chunker (images/chunker.ts) in C: the same rule as the WebAssembly
// scan (images/gear-scan.ts), h = (h << 1) + gear[byte] per byte, stopping just past the first
// byte where (h & mask) == 0. Why C, and why eight bytes at a time: rolled byte by byte, every
// byte waits for the previous hash (a dependent shift-add, 2 cycles here: about 1 GB/s, like
// the wasm loop). Over eight bytes the table part, t_k = sum of gear[b_j] << (k - j), does not
// depend on h, so it is computed beside the chain; h after k bytes is then (h << k) + t_k, one
// independent shift-add each, checked in order so the first cut wins exactly as byte by byte.
#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

static int64_t scan(const uint32_t* gear, const uint8_t* p, size_t from, size_t to, uint32_t* hp, uint32_t mask) {
  uint32_t h = *hp;
  size_t i = from;
  for (; i + 8 <= to; i += 8) {
    uint32_t t[8];
    uint32_t acc = 0;
    for (int k = 0; k < 8; k++) t[k] = acc = (acc << 1) + gear[p[i + k]];
    for (int k = 0; k < 8; k++)
      if ((((h << (k + 1)) + t[k]) & mask) == 0) return (int64_t)(i + k + 1);
    h = (h << 8) + t[7];
  }
  for (; i < to; i++) {
    h = (h << 1) + gear[p[i]];
    if ((h & mask) == 0) return (int64_t)(i + 1);
  }
  *hp = h;
  return -1;
}

static napi_value fail(napi_env env, const char* message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

static int bytes_of(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want || (want == napi_uint8_array && type == napi_uint8_clamped_array);
}

// scan(gear: Int32Array(256), data: Uint8Array, from, to, h, mask): the index in data just past
// the cut, or, when there is none in [from, to), -1 - (h >>> 0) with h the hash at `to` (one
// number back, so no object is made per call).
static napi_value js_scan(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return fail(env, "scan: 6 arguments expected");
  void* table;
  void* data;
  size_t table_len, data_len;
  int64_t from, to;
  uint32_t h, mask;
  if (!bytes_of(env, argv[0], napi_int32_array, &table, &table_len) || table_len != 256) return fail(env, "scan: gear table must be an Int32Array of 256");
  if (!bytes_of(env, argv[1], napi_uint8_array, &data, &data_len)) return fail(env, "scan: data must be a Uint8Array");
  if (napi_get_value_int64(env, argv[2], &from) != napi_ok || napi_get_value_int64(env, argv[3], &to) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &h) != napi_ok || napi_get_value_uint32(env, argv[5], &mask) != napi_ok)
    return fail(env, "scan: from, to, h and mask must be numbers");
  if (from < 0 || to < from || (uint64_t)to > data_len) return fail(env, "scan: range outside the data");
  int64_t cut = scan((const uint32_t*)table, (const uint8_t*)data, (size_t)from, (size_t)to, &h, mask);
  napi_value out;
  napi_create_double(env, cut >= 0 ? (double)cut : -1.0 - (double)h, &out);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "scan", NAPI_AUTO_LENGTH, js_scan, NULL, &fn);
  napi_set_named_property(env, exports, "scan", fn);
  return exports;
}
