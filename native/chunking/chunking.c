// N-API for the package chunker (packages/native-chunking.ts): the gear-hash scan (gear_scan.c)
// and SHA-256 of a batch of chunks (sha256_lanes.c), each over memory the caller owns (the hash
// workers pass the shared blocks they read from), so nothing is copied on the way in.
#include <node_api.h>
#include <pthread.h>
#include <stdlib.h>

#include <string.h>

#include "../common/nb_common.h"
#include "gear_scan.h"
#include "sha256_lanes.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
  gear_scan_init();
  sha256_batch_init();
}

static napi_value fail(napi_env env, const char* message) {
  napi_throw_range_error(env, NULL, message);
  return NULL;
}

static int typed_of(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* length) {
  napi_typedarray_type type;
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

// scan(gear: Int32Array(256), data: Uint8Array, from, to, h, mask): the index in data just past
// the cut, or, when there is none in [from, to), -1 - (h >>> 0) with h the hash at `to` (one
// number back, so no object is made per call).
static napi_value scan_with(napi_env env, napi_callback_info info, int scalar) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) return fail(env, "scan: 6 arguments expected");
  void* table;
  void* data;
  size_t table_len, data_len;
  int64_t from, to;
  uint32_t h, mask;
  if (!typed_of(env, argv[0], napi_int32_array, &table, &table_len) || table_len != 256) return fail(env, "scan: gear table must be an Int32Array of 256");
  if (!typed_of(env, argv[1], napi_uint8_array, &data, &data_len)) return fail(env, "scan: data must be a Uint8Array");
  if (napi_get_value_int64(env, argv[2], &from) != napi_ok || napi_get_value_int64(env, argv[3], &to) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &h) != napi_ok || napi_get_value_uint32(env, argv[5], &mask) != napi_ok)
    return fail(env, "scan: from, to, h and mask must be numbers");
  if (from < 0 || to < from || (uint64_t)to > data_len) return fail(env, "scan: range outside the data");
  int64_t cut = (scalar ? gear_scan_scalar : gear_scan)((const uint32_t*)table, (const uint8_t*)data, (size_t)from, (size_t)to, &h, mask);
  napi_value out;
  napi_create_double(env, cut >= 0 ? (double)cut : -1.0 - (double)h, &out);
  return out;
}

static napi_value js_scan(napi_env env, napi_callback_info info) { return scan_with(env, info, 0); }

// scanScalar(...): the same without AVX-512, so tests check both on a machine that has it.
static napi_value js_scan_scalar(napi_env env, napi_callback_info info) { return scan_with(env, info, 1); }

// sha256Chunks(mem: Uint8Array, pieces: Uint32Array, out: Uint8Array): chunk i is
// mem[pieces[4i], +pieces[4i+1]) followed by mem[pieces[4i+2], +pieces[4i+3]) (length 0: none);
// its digest goes to out[32i, 32i + 32).
static napi_value js_sha256_chunks(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) return fail(env, "sha256Chunks: 3 arguments expected");
  void *mem, *pieces, *out;
  size_t mem_len, pieces_len, out_len;
  if (!typed_of(env, argv[0], napi_uint8_array, &mem, &mem_len) || !typed_of(env, argv[1], napi_uint32_array, &pieces, &pieces_len) ||
      !typed_of(env, argv[2], napi_uint8_array, &out, &out_len))
    return fail(env, "sha256Chunks: (Uint8Array, Uint32Array, Uint8Array) expected");
  size_t count = pieces_len / 4;
  if (pieces_len % 4 != 0 || out_len < 32 * count) return fail(env, "sha256Chunks: 4 numbers per chunk and 32 bytes of output each");
  if (count == 0) return NULL;
  sha256_msg_t* msgs = nb_calloc(count, sizeof *msgs);
  if (msgs == NULL) return fail(env, "sha256Chunks: out of memory");
  const uint32_t* d = pieces;
  for (size_t i = 0; i < count; i++) {
    for (int k = 0; k < 2; k++) {
      uint64_t at = d[4 * i + 2 * k], len = d[4 * i + 2 * k + 1];
      if (at + len > mem_len) {
        free(msgs);
        return fail(env, "sha256Chunks: a piece lies outside the memory");
      }
      msgs[i].piece[k] = (const uint8_t*)mem + at;
      msgs[i].length[k] = len;
    }
  }
  sha256_batch(msgs, count, out);
  free(msgs);
  return NULL;
}

// scanAvx512(): whether the scan uses AVX-512 (else eight bytes a round in scalar code).
static napi_value js_scan_avx512(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_get_boolean(env, gear_scan_avx512() != 0, &out);
  return out;
}

// sha256Engine(name?): the one-block compression the lanes finish with ("sha-ni" or "c");
// with a name (NETBOOT_NATIVE_FAULTS=1 only), forces it first, so tests check both.
static napi_value js_sha256_engine(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc > 0) {
    const char* faults = getenv("NETBOOT_NATIVE_FAULTS");
    char name[16];
    size_t len;
    if (faults == NULL || strcmp(faults, "1") != 0) return fail(env, "sha256Engine: forcing an engine is for tests (NETBOOT_NATIVE_FAULTS=1)");
    if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok || !sha256_set_engine(name)) return fail(env, "sha256Engine: no such engine here");
  }
  napi_create_string_utf8(env, sha256_engine(), NAPI_AUTO_LENGTH, &out);
  return out;
}

// sha256Lanes(): whether batches run in AVX-512 lanes (else one by one with OpenSSL).
static napi_value js_sha256_lanes(napi_env env, napi_callback_info info) {
  napi_value out;
  napi_get_boolean(env, sha256_batch_lanes() != 0, &out);
  return out;
}

NAPI_MODULE_INIT() {
  pthread_once(&once, init);
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"scan", js_scan}, {"scanScalar", js_scan_scalar}, {"sha256Chunks", js_sha256_chunks}, {"sha256Lanes", js_sha256_lanes}, {"scanAvx512", js_scan_avx512}, {"sha256Engine", js_sha256_engine}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  nb_define_faults(env, exports);
  return exports;
}
