;; wasi.wat - an actor importing WASI preview1 (as wasi-libc's printf
;; would): handle-send writes its message to stdout with fd_write; the
;; state becomes fd_write's errno as one byte.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))

  (func $ret (param $p i32) (param $n i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (local.get $p))
    (i32.store (i32.const 76) (local.get $n))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ret (i32.const 0) (i32.const 0)))

  (func (export "theater:simple/message-server-client#handle-send")
        (param i32 i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (i32.store (i32.const 512) (local.get $mp))
    (i32.store (i32.const 516) (local.get $ml))
    (i32.store8 (i32.const 600) (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))
    (call $ret (i32.const 600) (i32.const 1)))

  (func (export "cabi_realloc") (param $old i32) (param $osz i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (local.get $p))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
)
