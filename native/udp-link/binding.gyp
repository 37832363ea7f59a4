{
  "targets": [
    {
      "target_name": "udp_link",
      "sources": ["udp_link.c", "chain.c", "batch_send.c", "read_cached.c", "listener.c", "../common/nb_common.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
