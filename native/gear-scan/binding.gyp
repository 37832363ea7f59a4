{
  "targets": [
    {
      "target_name": "gear_scan",
      "sources": ["gear_scan.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
