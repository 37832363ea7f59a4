// readCached: page-cache-only reads into ring slots (udp_link.c registers it).
#ifndef NETBOOT_READ_CACHED_H
#define NETBOOT_READ_CACHED_H
#include <node_api.h>

napi_value read_cached(napi_env env, napi_callback_info info);

#endif
