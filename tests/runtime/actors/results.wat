;; results.wat - an actor whose handle-send returns, in its return area,
;; whatever result the message's first byte asks for: well-formed ones and
;; malformed ones. It tests how a runtime reads results in place (actor.c,
;; finish_inplace) against what lifting them would give.
;;   n  ok(tuple(none))             s  ok(tuple(some("abc")))
;;   z  ok(tuple(some(""))) at 0    e  err("bad")
;;   a  a misaligned return area    o  an option discriminant of 2
;;   r  a result discriminant of 2  b  a state list far out of bounds
;;   k  a state list that crosses the end of memory
(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 160) "bad")

  ;; the return area at 64: result disc, option disc (or string), ptr, len
  (func $area (param $rd i32) (param $od i32) (param $p i32) (param $n i32) (result i32)
    (i32.store8 (i32.const 64) (local.get $rd))
    (i32.store8 (i32.const 68) (local.get $od))
    (i32.store (i32.const 72) (local.get $p))
    (i32.store (i32.const 76) (local.get $n))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $area (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))

  (func (export "theater:simple/message-server-client#handle-send")
        (param $sd i32) (param $sp i32) (param $sl i32) (param $mp i32) (param $ml i32) (result i32)
    (local $c i32)
    (local.set $c (i32.load8_u (local.get $mp)))
    (if (i32.eq (local.get $c) (i32.const 110)) ;; n
      (then (return (call $area (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 115)) ;; s: "abc" at 128, written anew
      (then (i32.store16 (i32.const 128) (i32.const 0x6261))
            (i32.store8 (i32.const 130) (i32.const 0x63))
            (return (call $area (i32.const 0) (i32.const 1) (i32.const 128) (i32.const 3)))))
    (if (i32.eq (local.get $c) (i32.const 122)) ;; z
      (then (return (call $area (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)))))
    (if (i32.eq (local.get $c) (i32.const 101)) ;; e: err(string) = disc 1, ptr @68, len @72
      (then (i32.store8 (i32.const 64) (i32.const 1))
            (i32.store (i32.const 68) (i32.const 160))
            (i32.store (i32.const 72) (i32.const 3))
            (return (i32.const 64))))
    (if (i32.eq (local.get $c) (i32.const 97)) ;; a
      (then (drop (call $area (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
            (i32.store8 (i32.const 66) (i32.const 0))
            (return (i32.const 66))))
    (if (i32.eq (local.get $c) (i32.const 111)) ;; o
      (then (return (call $area (i32.const 0) (i32.const 2) (i32.const 128) (i32.const 3)))))
    (if (i32.eq (local.get $c) (i32.const 114)) ;; r
      (then (return (call $area (i32.const 2) (i32.const 1) (i32.const 128) (i32.const 3)))))
    (if (i32.eq (local.get $c) (i32.const 98)) ;; b
      (then (return (call $area (i32.const 0) (i32.const 1) (i32.const -16) (i32.const 100)))))
    (if (i32.eq (local.get $c) (i32.const 107)) ;; k
      (then (return (call $area (i32.const 0) (i32.const 1) (i32.const 65530) (i32.const 100)))))
    unreachable)

  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32)
    ;; post-return may clobber the area: a reader must have copied it
    (i32.store (i32.const 64) (i32.const -1))
    (i32.store (i32.const 128) (i32.const -1))
    (global.set $bump (i32.const 4096)))

  (func (export "cabi_realloc") (param $old i32) (param $osz i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (local.get $p))
)
