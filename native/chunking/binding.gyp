{
  "targets": [
    {
      "target_name": "chunking",
      "sources": ["chunking.c", "sha256_lanes.c", "../common/nb_common.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
