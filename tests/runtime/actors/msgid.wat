;; msgid.wat - an actor that imports runtime.message-id (added to the
;; world here, not in Theater) and keeps the id of the last message it
;; handled as its state (8 bytes, little-endian). Core-module form.
(module
  (import "theater:simple/runtime" "message-id" (func $message_id (result i64)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))

  ;; ok((some(id))) in the return area at 64, the id at 128
  (func $ret_id (result i32)
    (i64.store (i32.const 128) (call $message_id))
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 1))
    (i32.store (i32.const 72) (i32.const 128))
    (i32.store (i32.const 76) (i32.const 8))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ret_id))
  (func (export "theater:simple/message-server-client#handle-send")
        (param i32 i32 i32 i32 i32) (result i32)
    (call $ret_id))

  (func (export "cabi_post_theater:simple/actor#init") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))

  (func (export "cabi_realloc") (param $old i32) (param $osz i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (if (i32.gt_u (global.get $bump) (i32.const 65536)) (then unreachable))
    (local.get $p))
)
