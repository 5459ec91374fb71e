# The native half of the `threads` design: a pthread-per-connection WebSocket server (native/src/).
#   npm run build:native  -> build/Release/wslab_threads.node   (-O2; loaded by server/threads/addon.ts)
#   npm run build:asan    -> build/Debug/wslab_threads.node     (AddressSanitizer; see native/README.md)
{
  'targets': [
    {
      'target_name': 'wslab_threads',
      'sources': [
        'native/src/addon.cc',
        'native/src/address_limit.cc',
        'native/src/connection.cc',
        'native/src/connection_thread.cc',
        'native/src/counters.cc',
        'native/src/frame_codec.cc',
        'native/src/handshake.cc',
        'native/src/listener.cc',
        'native/src/pool.cc',
        'native/src/protocol.cc',
        'native/src/server.cc',
        'native/src/spawn.cc',
      ],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
      'cflags': ['-Wall', '-Wextra'],  # node's common.gypi has them too, and -pthread
      'cflags_cc': ['-std=c++17', '-fexceptions'],
      'ldflags': ['-pthread'],
      'libraries': ['-lpthread'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
          'cflags': ['-O2'],
        },
        # The Debug build is the AddressSanitizer build. Node itself is not instrumented, so the ASan runtime must be
        # preloaded: LD_PRELOAD=$(gcc -print-file-name=libasan.so).
        'Debug': {
          'cflags!': ['-O0'],
          'cflags': ['-O1', '-g', '-fsanitize=address', '-fno-omit-frame-pointer'],
          'ldflags': ['-fsanitize=address'],
        },
      },
    },
  ],
}
