;; wasi_clock.wat - a core-module actor reading the outside world through
;; WASI (as wasi-libc's time() and getentropy() would): each handle-send
;; takes 8 random bytes (random_get) and the realtime clock
;; (clock_time_get) and makes those 16 bytes its state, and writes its
;; message to stdout (fd_write). A replay must give it the recorded values.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
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
    (drop (call $random_get (i32.const 1024) (i32.const 8)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 1032)))
    (i32.store (i32.const 512) (local.get $mp))
    (i32.store (i32.const 516) (local.get $ml))
    (drop (call $fd_write (i32.const 1) (i32.const 512) (i32.const 1) (i32.const 520)))
    (call $ret (i32.const 1024) (i32.const 16)))

  (func (export "cabi_realloc") (param $old i32) (param $osz i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (local.get $p))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
)
