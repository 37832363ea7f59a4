{
  "targets": [
    {
      "target_name": "udp_batch",
      "sources": ["udp_batch.c", "mmsg.c", "../common/nb_common.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
