// Reads into ring slots only from the page cache (preadv2 with RWF_NOWAIT).
#define _GNU_SOURCE
#include "read_cached.h"

#include <errno.h>
#include <stdint.h>
#include <sys/uio.h>

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#define MAX_READ_IOVECS 1024

// readCached(fd, buf, offset, stride, count, length, position): reads file bytes from `position`
// into `count` spans of `length` bytes laid out every `stride` bytes of buf from `offset` (the
// payloads of ring slots), only if the page cache has them (preadv2 RWF_NOWAIT): a read that
// would wait for the disk is refused (-EAGAIN) and left to the thread pool. Returns bytes read
// (possibly fewer: the rest is not cached, or the file ends) or -errno.
napi_value read_cached(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void* data;
  size_t len;
  uint32_t offset, stride, count, length;
  int64_t position;
  if (argc < 7 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &offset) != napi_ok || napi_get_value_uint32(env, argv[3], &stride) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &count) != napi_ok || napi_get_value_uint32(env, argv[5], &length) != napi_ok ||
      napi_get_value_int64(env, argv[6], &position) != napi_ok || count == 0 || count > MAX_READ_IOVECS || length > stride || position < 0 ||
      (uint64_t)offset + (uint64_t)(count - 1) * stride + length > len) {
    napi_throw_range_error(env, NULL, "readCached: spans outside the buffer");
    return NULL;
  }
  struct iovec iov[MAX_READ_IOVECS];
  for (uint32_t i = 0; i < count; i++) {
    iov[i].iov_base = (uint8_t*)data + offset + (size_t)i * stride;
    iov[i].iov_len = length;
  }
  ssize_t n = preadv2(fd, iov, (int)count, position, RWF_NOWAIT);
  napi_value out;
  napi_create_int64(env, n < 0 ? -errno : n, &out);
  return out;
}
