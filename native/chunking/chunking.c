// N-API for the package hash workers (packages/native-chunking.ts): SHA-256 of a batch of chunks
// (sha256_lanes.c) over memory the caller owns (the workers pass the shared blocks they read
// from), so nothing is copied on the way in. (The gear scan was native too until it measured
// about half as fast as the WebAssembly scan: bench/RESULTS.md, "Native paths".)
#include <node_api.h>
#include <pthread.h>
#include <stdlib.h>

#include <string.h>

#include "../common/nb_common.h"
#include "sha256_lanes.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
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
  } fns[] = {{"sha256Chunks", js_sha256_chunks}, {"sha256Lanes", js_sha256_lanes}, {"sha256Engine", js_sha256_engine}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  nb_define_faults(env, exports);
  return exports;
}
